package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/rowboatdb/rowboat/followerread"
	"github.com/rowboatdb/rowboat/logical"
	"github.com/rowboatdb/rowboat/node"
)

// Errors of the HTTP layer itself.
var (
	// errBadRequest wraps every malformed request: bad JSON, a bad parameter, an unknown level.
	errBadRequest = errors.New("bad request")
	// errNotSent: forwarding to the leader failed before the request reached it; nothing was applied.
	errNotSent = errors.New("could not reach the leader")
	// errUnknownOutcome: a forwarded write reached the leader but its answer was lost; it may have applied.
	errUnknownOutcome = errors.New("the leader did not answer a forwarded write: it may or may not have been applied")
	// errLoop: a request forwarded once reached a node that is not the leader either.
	errLoop = errors.New("forwarded request reached a node that is not the leader")
	// errNotFound: a route or member that does not exist.
	errNotFound = errors.New("not found")
	// errBodyTimeout: the client stopped sending its body before the request's time ran out.
	errBodyTimeout = errors.New("request body timed out")
)

// errorKind is how one kind of error is answered.
type errorKind struct {
	target     error
	status     int
	code       string
	retryAfter bool // 503s a client should retry
	expose     bool // the error text is safe and useful to show
}

// errorKinds is the one table that maps errors to HTTP statuses; the first match wins.
var errorKinds = []errorKind{
	{errBadRequest, http.StatusBadRequest, "bad_request", false, true},
	{node.ErrBadRequest, http.StatusBadRequest, "bad_request", false, true},
	{logical.ErrNotReadOnly, http.StatusBadRequest, "not_read_only", false, true},
	{followerread.ErrBadLevel, http.StatusBadRequest, "bad_request", false, true},
	{errNotFound, http.StatusNotFound, "not_found", false, true},
	{errBodyTimeout, http.StatusRequestTimeout, "body_timeout", false, true},
	{node.ErrUnknownMember, http.StatusNotFound, "unknown_member", false, true},
	{node.ErrUnreachable, http.StatusServiceUnavailable, "unreachable", true, true},
	{node.ErrWouldLoseQuorum, http.StatusConflict, "no_quorum", false, true},
	{node.ErrNoLeader, http.StatusServiceUnavailable, "no_leader", true, true},
	{node.ErrNotLeader, http.StatusServiceUnavailable, "not_leader", true, true},
	{node.ErrHandedOver, http.StatusServiceUnavailable, "not_leader", true, true},
	{errNotSent, http.StatusServiceUnavailable, "no_leader", true, true},
	{errLoop, http.StatusServiceUnavailable, "not_leader", true, true},
	{node.ErrLeadershipLost, http.StatusServiceUnavailable, "unknown_outcome", true, true},
	{errUnknownOutcome, http.StatusServiceUnavailable, "unknown_outcome", true, true},
	{followerread.ErrStale, http.StatusServiceUnavailable, "stale", true, true},
	{node.ErrShuttingDown, http.StatusServiceUnavailable, "shutting_down", true, true},
	{node.ErrTimeout, http.StatusGatewayTimeout, "timeout", false, true},
}

// errorBody is every request-level error's JSON.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// writeError answers err with its status and a JSON body. Unexpected errors are logged and hidden.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: "request body is larger than the limit of " +
			itoa(maxErr.Limit) + " bytes", Code: "too_large"}, false)
		return
	}
	if errors.Is(err, errBodyTimeout) {
		// The body read ran into the connection's deadline, which the answer shares: give the answer a moment
		// of its own, or the client only sees the connection close.
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(5 * time.Second))
	}
	if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, node.ErrTimeout) {
		err = fmt.Errorf("%w: the request did not finish within its timeout (?timeout=D sets it; the default is %s)", node.ErrTimeout, s.opts.Timeout)
	}
	for _, k := range errorKinds {
		if !errors.Is(err, k.target) {
			continue
		}
		msg := http.StatusText(k.status)
		if k.expose {
			msg = err.Error()
		}
		if k.retryAfter {
			w.Header().Set("Retry-After", "1")
		}
		if k.status >= 500 {
			s.log.Debug("request failed", "method", r.Method, "path", r.URL.Path, "status", k.status, "err", err)
		}
		writeJSON(w, k.status, errorBody{Error: msg, Code: k.code}, false)
		return
	}
	if errors.Is(err, context.Canceled) {
		// The client went away; nobody reads the answer.
		w.WriteHeader(499)
		return
	}
	s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error (details in the server log)", Code: "internal"}, false)
}

func writeJSON(w http.ResponseWriter, status int, v any, pretty bool) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	if pretty {
		enc.SetIndent("", "    ")
	}
	if err := enc.Encode(v); err != nil {
		slog.Debug("write response", "err", err)
	}
}
