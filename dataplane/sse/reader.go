// Package sse reads and writes the line-oriented streams LLM providers use:
// Server-Sent Events (text/event-stream) and newline-delimited JSON. Readers
// are correct whatever byte boundaries the upstream bytes arrive at (mid-line,
// mid-UTF-8, CR/LF split across reads) and bound the memory one event may use.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxEventSize bounds one event (or NDJSON line) unless told otherwise.
const DefaultMaxEventSize = 8 << 20

// ErrEventTooLarge is returned when an event or line exceeds the limit.
var ErrEventTooLarge = errors.New("stream event exceeds size limit")

// Event is one dispatched SSE event.
type Event struct {
	// Type is the event field ("" when absent; the spec's default is "message").
	Type string
	// Data is the data fields joined by "\n". It is only valid until the
	// next call to Next.
	Data []byte
	// ID is the last id field seen, if any.
	ID string
}

// Reader parses an SSE stream event by event.
type Reader struct {
	br      *bufio.Reader
	max     int
	line    []byte // accumulates a line longer than the bufio buffer
	data    []byte
	hasData bool
	typ     string
	id      string
	err     error
}

// NewReader returns a Reader; maxEventSize <= 0 means DefaultMaxEventSize.
func NewReader(r io.Reader, maxEventSize int) *Reader {
	if maxEventSize <= 0 {
		maxEventSize = DefaultMaxEventSize
	}
	return &Reader{br: bufio.NewReaderSize(r, 16<<10), max: maxEventSize}
}

// Next returns the next event. It returns io.EOF at a clean end of stream
// (an event still pending at EOF is dispatched first when its last line was
// complete; a trailing partial line is dropped, as the spec says).
func (r *Reader) Next() (Event, error) {
	if r.err != nil {
		return Event{}, r.err
	}
	r.data = r.data[:0]
	r.hasData = false
	r.typ = ""
	for {
		line, err := r.readLine()
		if err != nil {
			r.err = err
			if err == io.EOF && r.hasData {
				return r.event(), nil
			}
			return Event{}, err
		}
		// A lone CR is also a line terminator; split on it.
		for {
			i := bytes.IndexByte(line, '\r')
			if i < 0 {
				break
			}
			if done := r.field(line[:i]); done {
				// Rare: an event ended by CR-only lines in the middle of a
				// read. Keep the rest for the next call.
				rest := append([]byte(nil), line[i+1:]...)
				ev := r.event()
				r.pushBack(rest)
				return ev, nil
			}
			line = line[i+1:]
		}
		if done := r.field(line); done {
			return r.event(), nil
		}
		if len(r.data) > r.max {
			r.err = ErrEventTooLarge
			return Event{}, r.err
		}
	}
}

// pending holds bytes split off a CR-terminated line, served before br.
func (r *Reader) pushBack(rest []byte) {
	if len(rest) == 0 {
		return
	}
	r.br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(append(rest, '\n')), r.br), 16<<10)
}

func (r *Reader) event() Event {
	return Event{Type: r.typ, Data: r.data, ID: r.id}
}

// field processes one line; it reports true when the line is blank and an
// event is ready to dispatch.
func (r *Reader) field(line []byte) bool {
	if len(line) == 0 {
		return r.hasData
	}
	if line[0] == ':' {
		return false // comment
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "data":
		if r.hasData {
			r.data = append(r.data, '\n')
		}
		r.data = append(r.data, value...)
		r.hasData = true
	case "event":
		r.typ = internEventType(value)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			r.id = string(value)
		}
	}
	return false
}

// readLine returns one line without its LF (and without a CR right before
// it), or io.EOF. The slice is valid until the next call.
func (r *Reader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		frag, err := r.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if len(r.line)+len(frag) > r.max {
				return nil, ErrEventTooLarge
			}
			r.line = append(r.line, frag...)
			continue
		}
		if err != nil {
			if err == io.EOF {
				// A partial final line is dropped; the caller reports EOF.
				return nil, io.EOF
			}
			return nil, fmt.Errorf("read stream: %w", err)
		}
		line := frag
		if len(r.line) > 0 {
			if len(r.line)+len(frag) > r.max {
				return nil, ErrEventTooLarge
			}
			r.line = append(r.line, frag...)
			line = r.line
		}
		line = line[:len(line)-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		return line, nil
	}
}

var commonEventTypes = []string{
	"message_start", "content_block_start", "content_block_delta", "content_block_stop",
	"message_delta", "message_stop", "ping", "error", "message",
}

// internEventType avoids allocating a string for the well-known event names.
func internEventType(b []byte) string {
	for _, s := range commonEventTypes {
		if string(b) == s {
			return s
		}
	}
	return string(b)
}
