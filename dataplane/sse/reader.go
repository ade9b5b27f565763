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
	// skipLF is set after a line ended by CR: an LF right after it
	// belongs to the same CRLF terminator.
	skipLF bool
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
		if done := r.field(line); done {
			return r.event(), nil
		}
		if len(r.data) > r.max {
			r.err = ErrEventTooLarge
			return Event{}, r.err
		}
	}
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

// readLine returns one line without its terminator (LF, CRLF or a lone CR,
// as the spec allows), or io.EOF. The slice is valid until the next call.
// A CR at the end of one read and an LF at the start of the next are one
// terminator: the LF is skipped when the next line is read.
func (r *Reader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		n := r.br.Buffered()
		if n == 0 {
			if _, err := r.br.Peek(1); err != nil {
				if err == io.EOF {
					// A partial final line is dropped; the caller reports EOF.
					return nil, io.EOF
				}
				return nil, fmt.Errorf("read stream: %w", err)
			}
			n = r.br.Buffered()
		}
		buf, _ := r.br.Peek(n)
		if r.skipLF {
			r.skipLF = false
			if buf[0] == '\n' {
				_, _ = r.br.Discard(1)
				continue
			}
		}
		end := bytes.IndexByte(buf, '\n')
		if end < 0 {
			end = len(buf)
		}
		if cr := bytes.IndexByte(buf[:end], '\r'); cr >= 0 {
			end = cr
			r.skipLF = true
		} else if end == len(buf) {
			// No terminator buffered yet: keep the fragment and read on.
			if len(r.line)+n > r.max {
				return nil, ErrEventTooLarge
			}
			r.line = append(r.line, buf...)
			_, _ = r.br.Discard(n)
			continue
		}
		if len(r.line)+end > r.max {
			return nil, ErrEventTooLarge
		}
		line := buf[:end]
		if len(r.line) > 0 {
			r.line = append(r.line, line...)
			line = r.line
		}
		// Discard only moves the read index: line stays valid until the
		// next read from br.
		_, _ = r.br.Discard(end + 1)
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
