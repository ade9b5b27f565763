package eventstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
	"time"

	awses "github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	json "github.com/go-json-experiment/json/v1"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// decodedVector is the JSON shape of testdata/awsvectors/decoded/positive/*.
type decodedVector struct {
	TotalLength   uint32 `json:"total_length"`
	HeadersLength uint32 `json:"headers_length"`
	PreludeCRC    int64  `json:"prelude_crc"`
	Headers       []struct {
		Name  string          `json:"name"`
		Type  ValueType       `json:"type"`
		Value json.RawMessage `json:"value"`
	} `json:"headers"`
	Payload    []byte `json:"payload"`
	MessageCRC int64  `json:"message_crc"`
}

func (v decodedVector) message(t *testing.T) Message {
	t.Helper()
	m := Message{Payload: v.Payload}
	for _, h := range v.Headers {
		out := Header{Name: h.Name, Type: h.Type}
		switch h.Type {
		case TypeBoolTrue:
			out.Int = 1
		case TypeBoolFalse:
		case TypeBytes, TypeString, TypeUUID:
			if err := json.Unmarshal(h.Value, &out.Data); err != nil {
				t.Fatal(err)
			}
		default:
			if err := json.Unmarshal(h.Value, &out.Int); err != nil {
				t.Fatal(err)
			}
		}
		m.Headers = append(m.Headers, out)
	}
	return m
}

var cmpMessage = cmp.Options{cmpopts.EquateEmpty()}

// TestAWSVectors decodes the AWS conformance vectors and re-encodes the
// positive ones byte for byte.
func TestAWSVectors(t *testing.T) {
	dir := filepath.Join("testdata", "awsvectors")
	positives, err := filepath.Glob(filepath.Join(dir, "encoded", "positive", "*"))
	if err != nil || len(positives) == 0 {
		t.Fatalf("no positive vectors: %v", err)
	}
	for _, path := range positives {
		name := filepath.Base(path)
		t.Run("positive/"+name, func(t *testing.T) {
			wire, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			js, err := os.ReadFile(filepath.Join(dir, "decoded", "positive", name))
			if err != nil {
				t.Fatal(err)
			}
			var want decodedVector
			if err := json.Unmarshal(js, &want); err != nil {
				t.Fatal(err)
			}
			if got := binary.BigEndian.Uint32(wire); got != want.TotalLength {
				t.Fatalf("vector total length %d, want %d", got, want.TotalLength)
			}
			r := NewReader(bytes.NewReader(wire), 0)
			got, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			wantMsg := want.message(t)
			if d := cmp.Diff(&wantMsg, got, cmpMessage); d != "" {
				t.Errorf("decoded (-want +got):\n%s", d)
			}
			if _, err := r.Next(); err != io.EOF {
				t.Errorf("after the only message: %v, want io.EOF", err)
			}
			enc, err := AppendMessage(nil, &wantMsg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, wire) {
				t.Errorf("re-encoded bytes differ:\n got %x\nwant %x", enc, wire)
			}
		})
	}
	negatives, _ := filepath.Glob(filepath.Join(dir, "encoded", "negative", "*"))
	if len(negatives) == 0 {
		t.Fatal("no negative vectors")
	}
	for _, path := range negatives {
		name := filepath.Base(path)
		t.Run("negative/"+name, func(t *testing.T) {
			wire, _ := os.ReadFile(path)
			want, _ := os.ReadFile(filepath.Join(dir, "decoded", "negative", name))
			var wantErr error
			switch string(bytes.TrimSpace(want)) {
			case "Prelude checksum mismatch":
				wantErr = ErrPreludeChecksum
			case "Message checksum mismatch":
				wantErr = ErrMessageChecksum
			default:
				t.Fatalf("unknown expected error %q", want)
			}
			_, err := NewReader(bytes.NewReader(wire), 0).Next()
			if !errors.Is(err, wantErr) {
				t.Fatalf("got %v, want %v", err, wantErr)
			}
		})
	}
}

func allHeadersMessage() Message {
	return Message{
		Headers: []Header{
			{Name: "t", Type: TypeBoolTrue, Int: 1},
			{Name: "f", Type: TypeBoolFalse},
			{Name: "b", Type: TypeByte, Int: -7},
			{Name: "s", Type: TypeInt16, Int: -300},
			{Name: "i", Type: TypeInt32, Int: 1 << 30},
			{Name: "l", Type: TypeInt64, Int: -1 << 40},
			{Name: "bytes", Type: TypeBytes, Data: []byte{0, 1, 2, 255}},
			StringHeader(":event-type", "contentBlockDelta"),
			{Name: "ts", Type: TypeTimestamp, Int: 1700000000123},
			{Name: "id", Type: TypeUUID, Data: []byte("0123456789abcdef")},
		},
		Payload: []byte(`{"contentBlockIndex":0,"delta":{"text":"héllo"}}`),
	}
}

// TestSDKInterop checks both directions against the AWS SDK's codec.
func TestSDKInterop(t *testing.T) {
	m := allHeadersMessage()
	ours, err := AppendMessage(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	var sdk bytes.Buffer
	err = awses.NewEncoder().Encode(&sdk, awses.Message{
		Headers: awses.Headers{
			{Name: "t", Value: awses.BoolValue(true)},
			{Name: "f", Value: awses.BoolValue(false)},
			{Name: "b", Value: awses.Int8Value(-7)},
			{Name: "s", Value: awses.Int16Value(-300)},
			{Name: "i", Value: awses.Int32Value(1 << 30)},
			{Name: "l", Value: awses.Int64Value(-1 << 40)},
			{Name: "bytes", Value: awses.BytesValue([]byte{0, 1, 2, 255})},
			{Name: ":event-type", Value: awses.StringValue("contentBlockDelta")},
			{Name: "ts", Value: awses.TimestampValue(time.UnixMilli(1700000000123))},
			{Name: "id", Value: awses.UUIDValue([16]byte([]byte("0123456789abcdef")))},
		},
		Payload: m.Payload,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, sdk.Bytes()) {
		t.Fatalf("encoding differs from the SDK:\n ours %x\n  sdk %x", ours, sdk.Bytes())
	}
	dm, err := awses.NewDecoder().Decode(bytes.NewReader(ours), nil)
	if err != nil {
		t.Fatalf("sdk cannot decode ours: %v", err)
	}
	if got := dm.Headers.Get(":event-type").String(); got != "contentBlockDelta" {
		t.Errorf("sdk read :event-type %q", got)
	}
	got, err := NewReader(bytes.NewReader(sdk.Bytes()), 0).Next()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(&m, got, cmpMessage); d != "" {
		t.Errorf("decoded SDK bytes (-want +got):\n%s", d)
	}
	if got.Headers[8].Time() != time.UnixMilli(1700000000123).UTC() {
		t.Errorf("timestamp %v", got.Headers[8].Time())
	}
}

// chunkReader returns the stream in pieces of random size (1..max bytes).
type chunkReader struct {
	b   []byte
	rng *rand.Rand
	max int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := 1 + c.rng.IntN(c.max)
	n = min(n, len(c.b), len(p))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

func sampleStream(t testing.TB) ([]byte, []Message) {
	var msgs []Message
	for i, ev := range []string{"messageStart", "contentBlockDelta", "contentBlockDelta", "messageStop", "metadata"} {
		msgs = append(msgs, Message{
			Headers: []Header{
				StringHeader(":event-type", ev),
				StringHeader(":content-type", "application/json"),
				StringHeader(":message-type", "event"),
			},
			Payload: bytes.Repeat([]byte{byte('a' + i)}, 10*i),
		})
	}
	msgs = append(msgs, allHeadersMessage())
	var wire []byte
	for i := range msgs {
		var err error
		if wire, err = AppendMessage(wire, &msgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return wire, msgs
}

func readAll(r io.Reader) ([]Message, error) {
	d := NewReader(r, 0)
	var out []Message
	for {
		m, err := d.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		// Deep copy: the reader reuses its buffers.
		c := Message{Payload: bytes.Clone(m.Payload)}
		for _, h := range m.Headers {
			h.Data = bytes.Clone(h.Data)
			c.Headers = append(c.Headers, h)
		}
		out = append(out, c)
	}
}

// TestAnyByteBoundary replays a stream split at every kind of boundary.
func TestAnyByteBoundary(t *testing.T) {
	wire, want := sampleStream(t)
	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(wire) },
		"one-byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(wire)) },
		"data-err": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(wire)) },
	}
	for seed := range uint64(50) {
		readers["random-"+string(rune('a'+seed%26))+string(rune('0'+seed/26))] = func() io.Reader {
			return &chunkReader{b: wire, rng: rand.New(rand.NewPCG(seed, seed)), max: 1 + int(seed)%40}
		}
	}
	for name, mk := range readers {
		got, err := readAll(mk())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := cmp.Diff(want, got, cmpMessage); d != "" {
			t.Fatalf("%s (-want +got):\n%s", name, d)
		}
	}
}

func TestTruncated(t *testing.T) {
	wire, _ := sampleStream(t)
	for cut := 1; cut < len(wire); cut++ {
		got, err := readAll(bytes.NewReader(wire[:cut]))
		// A cut exactly at a message boundary is a clean EOF.
		if err == nil {
			re, _ := encodedLen(got)
			if re != cut {
				t.Fatalf("cut %d: clean EOF after %d bytes of messages", cut, re)
			}
			continue
		}
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("cut %d: %v, want io.ErrUnexpectedEOF", cut, err)
		}
	}
}

// encodedLen returns the encoded length of msgs (test helper).
func encodedLen(msgs []Message) (int, error) {
	var b []byte
	for i := range msgs {
		var err error
		if b, err = AppendMessage(b, &msgs[i]); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

func TestCorruption(t *testing.T) {
	m := allHeadersMessage()
	wire, err := AppendMessage(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	for i := range wire {
		bad := bytes.Clone(wire)
		bad[i] ^= 0x40
		_, err := NewReader(bytes.NewReader(bad), 0).Next()
		switch {
		case i < preludeLen:
			// A flipped length may also announce more bytes than exist,
			// but the prelude CRC is checked first.
			if !errors.Is(err, ErrPreludeChecksum) {
				t.Errorf("flip at %d: %v, want prelude checksum error", i, err)
			}
		default:
			if !errors.Is(err, ErrMessageChecksum) {
				t.Errorf("flip at %d: %v, want message checksum error", i, err)
			}
		}
	}
}

// prelude builds a valid prelude announcing the given lengths.
func prelude(total, headers uint32) []byte {
	p := binary.BigEndian.AppendUint32(nil, total)
	p = binary.BigEndian.AppendUint32(p, headers)
	return binary.BigEndian.AppendUint32(p, crc32.ChecksumIEEE(p))
}

// reject records whether the reader tried to read past the prelude.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestOversizeAndMalformed(t *testing.T) {
	tests := []struct {
		name  string
		wire  []byte
		max   int
		want  error
		reads int // bytes consumed before failing
	}{
		{"over default 16MiB", append(prelude(16<<20+1, 0), make([]byte, 64)...), 0, ErrMessageTooLarge, 12},
		{"exactly at limit is allowed to start", prelude(16<<20, 0), 0, io.ErrUnexpectedEOF, 12},
		{"over custom limit", append(prelude(1025, 0), make([]byte, 2000)...), 1024, ErrMessageTooLarge, 12},
		{"total below minimum", prelude(15, 0), 0, ErrMalformed, 12},
		{"headers longer than message", append(prelude(20, 5), make([]byte, 8)...), 0, ErrMalformed, 12},
		{"max uint32 headers", append(prelude(32, 0xFFFFFFFF), make([]byte, 20)...), 0, ErrMalformed, 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := &countingReader{r: bytes.NewReader(tt.wire)}
			_, err := NewReader(cr, tt.max).Next()
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if cr.n != tt.reads {
				t.Errorf("consumed %d bytes, want %d (must not read the body of a rejected frame)", cr.n, tt.reads)
			}
		})
	}
}

// frame wraps raw header bytes in a valid message so header parsing is tested
// behind correct checksums.
func frame(headers, payload []byte) []byte {
	total := uint32(minMessageLen + len(headers) + len(payload))
	b := prelude(total, uint32(len(headers)))
	b = append(b, headers...)
	b = append(b, payload...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

func TestMalformedHeaders(t *testing.T) {
	tests := map[string][]byte{
		"zero-length name":       {0, 7, 0, 0},
		"name past end":          {5, 'a', 'b'},
		"missing type":           {1, 'a'},
		"unknown type":           {1, 'a', 10},
		"string length past end": {1, 'a', 7, 0, 9, 'x'},
		"string missing length":  {1, 'a', 7, 0},
		"int32 truncated":        {1, 'a', 4, 0, 0},
		"uuid truncated":         {1, 'a', 9, 1, 2, 3},
	}
	for name, h := range tests {
		t.Run(name, func(t *testing.T) {
			d := NewReader(bytes.NewReader(frame(h, []byte("{}"))), 0)
			_, err := d.Next()
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Offset != 0 {
				t.Errorf("want a DecodeError at offset 0, got %#v", err)
			}
			if _, err2 := d.Next(); err2 != err {
				t.Errorf("error is not sticky: %v", err2)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	bad := []Message{
		{Headers: []Header{{Name: "", Type: TypeString}}},
		{Headers: []Header{{Name: string(make([]byte, 256)), Type: TypeString}}},
		{Headers: []Header{{Name: "u", Type: TypeUUID, Data: []byte{1}}}},
		{Headers: []Header{{Name: "s", Type: TypeString, Data: make([]byte, 1<<16)}}},
		{Headers: []Header{{Name: "x", Type: 42}}},
		{Payload: make([]byte, DefaultMaxMessageSize)},
	}
	for i := range bad {
		dst := []byte("keep")
		out, err := AppendMessage(dst, &bad[i])
		if err == nil {
			t.Errorf("message %d: no error", i)
		}
		if string(out) != "keep" {
			t.Errorf("message %d: dst not restored: %q", i, out)
		}
	}
}

func TestStringHeaderHelpers(t *testing.T) {
	m := allHeadersMessage()
	if got := m.StringHeader(":event-type"); got != "contentBlockDelta" {
		t.Errorf("StringHeader = %q", got)
	}
	if got := m.StringHeader("missing"); got != "" {
		t.Errorf("missing header = %q", got)
	}
	if got := m.StringHeader("i"); got != "" {
		t.Errorf("non-string header as string = %q", got)
	}
	allocs := testing.AllocsPerRun(100, func() { _ = m.StringHeader(":event-type") })
	if allocs != 0 {
		t.Errorf("well-known header value allocates %v times", allocs)
	}
}

func FuzzReader(f *testing.F) {
	wire, _ := sampleStream(f)
	f.Add(wire)
	vectors, _ := filepath.Glob(filepath.Join("testdata", "awsvectors", "encoded", "*", "*"))
	for _, p := range vectors {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add(frame([]byte{1, 'a', 7, 0, 1, 'x'}, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := readAll(bytes.NewReader(b))
		// Whatever decoded must re-encode to the same prefix of the input:
		// decoding is exact and lossless.
		n, encErr := encodedLen(msgs)
		if encErr != nil {
			t.Fatalf("decoded message does not re-encode: %v", encErr)
		}
		var re []byte
		for i := range msgs {
			re, _ = AppendMessage(re, &msgs[i])
		}
		if !bytes.Equal(re, b[:n]) {
			t.Fatalf("re-encoding differs from input")
		}
		if err == nil && n != len(b) {
			t.Fatalf("clean EOF with %d trailing bytes", len(b)-n)
		}
		// One-byte reads must give the same result.
		msgs2, err2 := readAll(iotest.OneByteReader(bytes.NewReader(b)))
		if (err == nil) != (err2 == nil) || len(msgs2) != len(msgs) {
			t.Fatalf("split reads disagree: %v vs %v", err, err2)
		}
	})
}

func BenchmarkReader(b *testing.B) {
	wire, msgs := sampleStream(b)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	r := bytes.NewReader(wire)
	d := NewReader(r, 0)
	for b.Loop() {
		r.Reset(wire)
		d.r, d.err = r, nil
		for range msgs {
			if _, err := d.Next(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkAppendMessage(b *testing.B) {
	m := allHeadersMessage()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendMessage(buf[:0], &m); err != nil {
			b.Fatal(err)
		}
	}
}
