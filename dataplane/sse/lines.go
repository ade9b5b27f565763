package sse

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// LineReader reads newline-delimited JSON (Ollama's streaming format): one
// value per line, blank lines skipped, CRLF tolerated.
type LineReader struct {
	br   *bufio.Reader
	max  int
	line []byte
}

// NewLineReader returns a LineReader; maxLine <= 0 means DefaultMaxEventSize.
func NewLineReader(r io.Reader, maxLine int) *LineReader {
	if maxLine <= 0 {
		maxLine = DefaultMaxEventSize
	}
	return &LineReader{br: bufio.NewReaderSize(r, 16<<10), max: maxLine}
}

// Next returns the next non-blank line, valid until the next call. A final
// line without a newline is returned too (NDJSON writers often omit it).
func (l *LineReader) Next() ([]byte, error) {
	for {
		l.line = l.line[:0]
		var err error
		for {
			var frag []byte
			frag, err = l.br.ReadSlice('\n')
			if len(l.line)+len(frag) > l.max {
				return nil, ErrEventTooLarge
			}
			if err == bufio.ErrBufferFull {
				l.line = append(l.line, frag...)
				continue
			}
			l.line = append(l.line, frag...)
			break
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read stream: %w", err)
		}
		line := bytes.TrimSpace(l.line)
		if len(line) > 0 {
			return line, nil
		}
		if err == io.EOF {
			return nil, io.EOF
		}
	}
}

// Writer writes SSE events to an HTTP response and flushes each one, so a
// translated event reaches the client as soon as it exists.
type Writer struct {
	w   io.Writer
	rc  *http.ResponseController
	buf []byte
}

// NewWriter wraps w; if w is an http.ResponseWriter each event is flushed.
func NewWriter(w io.Writer) *Writer {
	sw := &Writer{w: w}
	if rw, ok := w.(http.ResponseWriter); ok {
		sw.rc = http.NewResponseController(rw)
	}
	return sw
}

// Event writes "event: typ\ndata: data\n\n" (no event line when typ is empty)
// and flushes. data must not contain newlines (JSON from encoding/json never does).
func (s *Writer) Event(typ string, data []byte) error {
	s.buf = s.buf[:0]
	if typ != "" {
		s.buf = append(s.buf, "event: "...)
		s.buf = append(s.buf, typ...)
		s.buf = append(s.buf, '\n')
	}
	s.buf = append(s.buf, "data: "...)
	s.buf = append(s.buf, data...)
	s.buf = append(s.buf, '\n', '\n')
	if _, err := s.w.Write(s.buf); err != nil {
		return err
	}
	return s.Flush()
}

// Flush pushes buffered bytes to the client.
func (s *Writer) Flush() error {
	if s.rc == nil {
		return nil
	}
	if err := s.rc.Flush(); err != nil && err != http.ErrNotSupported {
		return err
	}
	return nil
}

// Done writes the OpenAI terminator "data: [DONE]".
func (s *Writer) Done() error { return s.Event("", []byte("[DONE]")) }
