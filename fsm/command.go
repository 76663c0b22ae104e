package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
)

// CommandType is the first byte of every Raft log entry rowboat writes.
type CommandType byte

// Command types. Values are part of the log format: never renumber them.
const (
	// CmdEntry carries a logical.Entry (the row changes of one group commit), encoded by logical.Encode.
	CmdEntry CommandType = 1
	// CmdNoop changes nothing; a leader proposes one to order a read after every earlier write (level strong).
	CmdNoop CommandType = 2
	// CmdSetMember records a member's metadata (its HTTP address), JSON-encoded Member.
	CmdSetMember CommandType = 3
	// CmdRemoveMember forgets a member's metadata, JSON-encoded Member (only ID is used).
	CmdRemoveMember CommandType = 4
	// CmdFencedEntry is a CmdEntry fenced by the term in which the leader executed its statements: a uvarint
	// term, then the encoded logical.Entry. Every node applies it only if the log entry's own term is that term,
	// and skips it otherwise (see ErrStaleEntry).
	CmdFencedEntry CommandType = 5
)

// ErrStaleEntry is the apply response of a CmdFencedEntry that reached the log in a later term than the one its
// statements were executed in. Its leader lost leadership while they ran, and may have won it back: the
// statements saw a state that may miss writes committed in between, so every node skips the entry and nothing
// of it is applied.
var ErrStaleEntry = errors.New("the write was executed in an earlier leadership term than the one it was logged in; nothing was applied")

// ErrBadCommand is wrapped by errors decoding a log entry rowboat did not write or cannot read.
var ErrBadCommand = errors.New("bad command")

// Member is what every node knows about every member beyond its Raft identity.
type Member struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
	RaftAddr string `json:"raft_addr,omitempty"`
	Voter    bool   `json:"voter"`
}

// EncodeEntry frames an encoded logical entry as a CmdEntry log payload.
func EncodeEntry(encoded []byte) []byte {
	return append([]byte{byte(CmdEntry)}, encoded...)
}

// EncodeNoop is the payload of a CmdNoop.
func EncodeNoop() []byte { return []byte{byte(CmdNoop)} }

// EncodeMember frames a CmdSetMember or CmdRemoveMember payload.
func EncodeMember(t CommandType, m Member) []byte {
	b, _ := json.Marshal(m) // a struct of strings and a bool cannot fail
	return append([]byte{byte(t)}, b...)
}

func decodeMember(b []byte) (Member, error) {
	var m Member
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: member: %v", ErrBadCommand, err)
	}
	if m.ID == "" {
		return m, fmt.Errorf("%w: member without id", ErrBadCommand)
	}
	return m, nil
}
