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
)

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
