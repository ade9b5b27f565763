// Package eventstream reads and writes the AWS event-stream binary framing
// (application/vnd.amazon.eventstream) that Bedrock's ConverseStream and
// InvokeModelWithResponseStream answer with. It is a small, allocation-aware
// implementation of the published wire format so the data plane does not
// pull in the AWS SDK.
//
// A message on the wire is:
//
//	prelude:  total length (uint32 BE) | headers length (uint32 BE) | prelude CRC32
//	headers:  repeated { name length (uint8) | name | value type (uint8) | value }
//	payload:  total length - headers length - 16 bytes
//	trailer:  message CRC32 over everything before it
//
// Both checksums are CRC-32 (IEEE) and are always verified.
package eventstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"
)

// Framing constants from the AWS event-stream specification.
const (
	preludeLen = 12 // total length + headers length + prelude CRC
	crcLen     = 4
	// minMessageLen is a message with no headers and no payload.
	minMessageLen = preludeLen + crcLen
	// maxHeaderNameLen is the largest name a one-byte length can carry.
	maxHeaderNameLen = 255
	// maxHeaderValueLen bounds string and byte-array values (two-byte length).
	maxHeaderValueLen = 1<<16 - 1
)

// DefaultMaxMessageSize bounds one message (prelude to trailing CRC) unless a
// Reader is told otherwise. AWS caps payloads at 16 MiB; a frame claiming more
// is corrupt or hostile, and rejecting it up front keeps a replica's memory
// bounded.
const DefaultMaxMessageSize = 16 << 20

// Errors returned by Reader. Decoding errors are wrapped in a *DecodeError
// with the offending message's offset so logs can locate the damage.
var (
	// ErrPreludeChecksum means the prelude CRC did not match: the length
	// fields cannot be trusted, so the stream cannot be resynchronised.
	ErrPreludeChecksum = errors.New("eventstream: prelude checksum mismatch")
	// ErrMessageChecksum means the message CRC did not match its bytes.
	ErrMessageChecksum = errors.New("eventstream: message checksum mismatch")
	// ErrMessageTooLarge means a prelude announced a message over the limit.
	ErrMessageTooLarge = errors.New("eventstream: message exceeds size limit")
	// ErrMalformed means the lengths or headers are inconsistent.
	ErrMalformed = errors.New("eventstream: malformed message")
)

// ValueType is the one-byte type tag of a header value.
type ValueType uint8

// Header value types, numbered as on the wire.
const (
	TypeBoolTrue  ValueType = 0
	TypeBoolFalse ValueType = 1
	TypeByte      ValueType = 2
	TypeInt16     ValueType = 3
	TypeInt32     ValueType = 4
	TypeInt64     ValueType = 5
	TypeBytes     ValueType = 6
	TypeString    ValueType = 7
	TypeTimestamp ValueType = 8 // milliseconds since the Unix epoch
	TypeUUID      ValueType = 9
)

// Header is one typed message header. Integer-like values (booleans as 0/1,
// byte, int16, int32, int64, timestamp in milliseconds) live in Int;
// string, byte-array and UUID values live in Data. Keeping one flat struct
// instead of an interface avoids an allocation per header.
type Header struct {
	Name string
	Type ValueType
	Int  int64
	Data []byte
}

// String returns the value of a string header ("" for other types).
// Well-known values are returned without allocating.
func (h *Header) String() string {
	if h.Type != TypeString {
		return ""
	}
	return intern(h.Data)
}

// Time returns a timestamp header's value.
func (h *Header) Time() time.Time { return time.UnixMilli(h.Int).UTC() }

// StringHeader builds a string header, the only kind Bedrock sends.
func StringHeader(name, value string) Header {
	return Header{Name: name, Type: TypeString, Data: []byte(value)}
}

// Message is one decoded event-stream message.
type Message struct {
	Headers []Header
	Payload []byte
}

// Header returns the first header with the given name.
func (m *Message) Header(name string) (*Header, bool) {
	for i := range m.Headers {
		if m.Headers[i].Name == name {
			return &m.Headers[i], true
		}
	}
	return nil, false
}

// StringHeader returns the value of the named string header, or "".
func (m *Message) StringHeader(name string) string {
	if h, ok := m.Header(name); ok {
		return h.String()
	}
	return ""
}

// DecodeError locates a decoding failure in the stream.
type DecodeError struct {
	// Offset is the byte offset of the start of the bad message.
	Offset int64
	Err    error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("%v (message at offset %d)", e.Err, e.Offset)
}

// Unwrap lets callers test for the sentinel errors with errors.Is.
func (e *DecodeError) Unwrap() error { return e.Err }

// Reader decodes messages one at a time from a byte stream. It reads exactly
// one message per Next call and never more than it needs, so it is correct
// whatever boundaries the underlying reads return.
type Reader struct {
	r       io.Reader
	max     int
	buf     []byte
	msg     Message
	offset  int64
	err     error
	prelude [preludeLen]byte
}

// NewReader returns a Reader; maxMessageSize <= 0 means DefaultMaxMessageSize.
func NewReader(r io.Reader, maxMessageSize int) *Reader {
	if maxMessageSize <= 0 {
		maxMessageSize = DefaultMaxMessageSize
	}
	return &Reader{r: r, max: maxMessageSize}
}

// Next returns the next message. The message, its headers' Data and its
// Payload are only valid until the next call. It returns io.EOF at a clean
// end of stream, io.ErrUnexpectedEOF when the stream stops inside a message,
// and a *DecodeError for corrupt input; after an error every call returns it
// again.
func (d *Reader) Next() (*Message, error) {
	if d.err != nil {
		return nil, d.err
	}
	m, err := d.next()
	if err != nil {
		d.err = err
		return nil, err
	}
	return m, nil
}

func (d *Reader) next() (*Message, error) {
	start := d.offset
	n, err := io.ReadFull(d.r, d.prelude[:])
	d.offset += int64(n)
	if err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, err // io.ErrUnexpectedEOF or a transport error
	}
	total := binary.BigEndian.Uint32(d.prelude[0:4])
	headersLen := binary.BigEndian.Uint32(d.prelude[4:8])
	if crc32.ChecksumIEEE(d.prelude[:8]) != binary.BigEndian.Uint32(d.prelude[8:12]) {
		return nil, &DecodeError{Offset: start, Err: ErrPreludeChecksum}
	}
	if uint64(total) > uint64(d.max) {
		return nil, &DecodeError{Offset: start, Err: fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, total, d.max)}
	}
	if total < minMessageLen || uint64(headersLen) > uint64(total-minMessageLen) {
		return nil, &DecodeError{Offset: start, Err: fmt.Errorf("%w: total length %d, headers length %d", ErrMalformed, total, headersLen)}
	}
	rest := int(total) - preludeLen
	if cap(d.buf) < rest {
		d.buf = make([]byte, rest)
	}
	d.buf = d.buf[:rest]
	n, err = io.ReadFull(d.r, d.buf)
	d.offset += int64(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	crc := crc32.Update(crc32.ChecksumIEEE(d.prelude[:]), crc32.IEEETable, d.buf[:rest-crcLen])
	if crc != binary.BigEndian.Uint32(d.buf[rest-crcLen:]) {
		return nil, &DecodeError{Offset: start, Err: ErrMessageChecksum}
	}
	d.msg.Headers = d.msg.Headers[:0]
	hdrs, err := parseHeaders(d.msg.Headers, d.buf[:headersLen])
	if err != nil {
		return nil, &DecodeError{Offset: start, Err: err}
	}
	d.msg.Headers = hdrs
	d.msg.Payload = d.buf[headersLen : rest-crcLen]
	return &d.msg, nil
}

// parseHeaders appends the headers encoded in b to dst.
func parseHeaders(dst []Header, b []byte) ([]Header, error) {
	for len(b) > 0 {
		nameLen := int(b[0])
		b = b[1:]
		if nameLen == 0 || len(b) < nameLen+1 {
			return dst, fmt.Errorf("%w: truncated header name", ErrMalformed)
		}
		h := Header{Name: intern(b[:nameLen]), Type: ValueType(b[nameLen])}
		b = b[nameLen+1:]
		var size int
		switch h.Type {
		case TypeBoolTrue:
			h.Int = 1
		case TypeBoolFalse:
		case TypeByte:
			size = 1
		case TypeInt16:
			size = 2
		case TypeInt32:
			size = 4
		case TypeInt64, TypeTimestamp:
			size = 8
		case TypeUUID:
			size = 16
		case TypeBytes, TypeString:
			if len(b) < 2 {
				return dst, fmt.Errorf("%w: truncated header %q", ErrMalformed, h.Name)
			}
			size = int(binary.BigEndian.Uint16(b))
			b = b[2:]
		default:
			return dst, fmt.Errorf("%w: header %q has unknown value type %d", ErrMalformed, h.Name, h.Type)
		}
		if len(b) < size {
			return dst, fmt.Errorf("%w: truncated header %q", ErrMalformed, h.Name)
		}
		v := b[:size]
		b = b[size:]
		switch h.Type {
		case TypeByte:
			h.Int = int64(int8(v[0]))
		case TypeInt16:
			h.Int = int64(int16(binary.BigEndian.Uint16(v)))
		case TypeInt32:
			h.Int = int64(int32(binary.BigEndian.Uint32(v)))
		case TypeInt64, TypeTimestamp:
			h.Int = int64(binary.BigEndian.Uint64(v))
		case TypeBytes, TypeString, TypeUUID:
			h.Data = v
		}
		dst = append(dst, h)
	}
	return dst, nil
}

// AppendMessage encodes m after dst. The data plane never sends event
// streams to AWS; this exists so tests and local fakes of Bedrock can
// produce byte-exact streams.
func AppendMessage(dst []byte, m *Message) ([]byte, error) {
	start := len(dst)
	dst = append(dst, make([]byte, preludeLen)...)
	for i := range m.Headers {
		h := &m.Headers[i]
		if len(h.Name) == 0 || len(h.Name) > maxHeaderNameLen {
			return dst[:start], fmt.Errorf("eventstream: header name %q must be 1 to %d bytes", h.Name, maxHeaderNameLen)
		}
		dst = append(dst, byte(len(h.Name)))
		dst = append(dst, h.Name...)
		dst = append(dst, byte(h.Type))
		switch h.Type {
		case TypeBoolTrue, TypeBoolFalse:
		case TypeByte:
			dst = append(dst, byte(h.Int))
		case TypeInt16:
			dst = binary.BigEndian.AppendUint16(dst, uint16(h.Int))
		case TypeInt32:
			dst = binary.BigEndian.AppendUint32(dst, uint32(h.Int))
		case TypeInt64, TypeTimestamp:
			dst = binary.BigEndian.AppendUint64(dst, uint64(h.Int))
		case TypeUUID:
			if len(h.Data) != 16 {
				return dst[:start], fmt.Errorf("eventstream: uuid header %q must be 16 bytes", h.Name)
			}
			dst = append(dst, h.Data...)
		case TypeBytes, TypeString:
			if len(h.Data) > maxHeaderValueLen {
				return dst[:start], fmt.Errorf("eventstream: header %q value exceeds %d bytes", h.Name, maxHeaderValueLen)
			}
			dst = binary.BigEndian.AppendUint16(dst, uint16(len(h.Data)))
			dst = append(dst, h.Data...)
		default:
			return dst[:start], fmt.Errorf("eventstream: header %q has unknown value type %d", h.Name, h.Type)
		}
	}
	headersLen := len(dst) - start - preludeLen
	dst = append(dst, m.Payload...)
	total := len(dst) - start + crcLen
	if total > DefaultMaxMessageSize {
		return dst[:start], ErrMessageTooLarge
	}
	p := dst[start : start+preludeLen]
	binary.BigEndian.PutUint32(p[0:4], uint32(total))
	binary.BigEndian.PutUint32(p[4:8], uint32(headersLen))
	binary.BigEndian.PutUint32(p[8:12], crc32.ChecksumIEEE(p[:8]))
	return binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:])), nil
}

// intern returns the string for b, without allocating for the header names
// and values Bedrock sends on every message.
func intern(b []byte) string {
	switch string(b) {
	case ":message-type":
		return ":message-type"
	case ":event-type":
		return ":event-type"
	case ":exception-type":
		return ":exception-type"
	case ":content-type":
		return ":content-type"
	case ":error-code":
		return ":error-code"
	case ":error-message":
		return ":error-message"
	case "event":
		return "event"
	case "exception":
		return "exception"
	case "error":
		return "error"
	case "application/json":
		return "application/json"
	case "messageStart":
		return "messageStart"
	case "contentBlockStart":
		return "contentBlockStart"
	case "contentBlockDelta":
		return "contentBlockDelta"
	case "contentBlockStop":
		return "contentBlockStop"
	case "messageStop":
		return "messageStop"
	case "metadata":
		return "metadata"
	case "chunk":
		return "chunk"
	}
	return string(b)
}
