package anthropic

import (
	"bytes"
	"errors"
	"io"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"
	wire "tollgate.dev/tollgate/dataplane/schema/anthropic"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/sse"
)

// MessagesStreamWriter encodes canonical chunks as an Anthropic Messages
// event stream for /v1/messages clients: message_start, one
// content_block_start / content_block_delta... / content_block_stop run per
// thinking, text or tool_use block (a new block starts whenever the kind of
// delta changes or a new tool call starts), then message_delta with the
// stop reason and usage, and message_stop. Each chunk is written (and
// flushed) as soon as it is given, so nothing is buffered.
//
// message_start is sent with the first chunk, before the upstream usage is
// known (OpenAI reports usage last), so its input_tokens are 0 unless that
// chunk carried usage; message_delta then reports the full usage,
// input_tokens included, as current Anthropic streams do.
//
// Only choice 0 is encoded: the canonical request built by
// ParseMessagesRequest never asks for more.
type MessagesStreamWriter struct {
	w         *sse.Writer
	id, model string

	started, closed bool
	open            bool // a content block is open
	openKind        blockKind
	openIndex       int
	nextIndex       int
	// toolBlocks maps an OpenAI tool_calls index to its block index.
	toolBlocks map[int]int
	sawTool    bool
	finish     string
	usage      *openai.Usage

	buf bytes.Buffer
	enc *json.Encoder
	// scratch is reused by the events written by hand.
	scratch []byte
}

// NewMessagesStreamWriter returns a writer for one streamed message; id and
// model are the message id ("msg_...") and model name the client sees.
func NewMessagesStreamWriter(w *sse.Writer, id, model string) *MessagesStreamWriter {
	return &MessagesStreamWriter{w: w, id: messageID(id), model: model, toolBlocks: make(map[int]int, 2)}
}

// Event payloads whose zero values Anthropic always sends (content_block
// start snapshots are accumulated by SDKs, so "text": "" must be present).
type (
	textStart struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	thinkingStart struct {
		Type      string `json:"type"`
		Thinking  string `json:"thinking"`
		Signature string `json:"signature"`
	}
	blockStartEvent struct {
		Type         string `json:"type"`
		Index        int    `json:"index"`
		ContentBlock any    `json:"content_block"`
	}
	blockDeltaEvent struct {
		Type  string           `json:"type"`
		Index int              `json:"index"`
		Delta wire.StreamDelta `json:"delta"`
	}
	blockStopEvent struct {
		Type  string `json:"type"`
		Index int    `json:"index"`
	}
	messageStartEvent struct {
		Type    string               `json:"type"`
		Message wire.MessageResponse `json:"message"`
	}
	messageDeltaBody struct {
		StopReason   string  `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	}
	messageDeltaEvent struct {
		Type  string           `json:"type"`
		Delta messageDeltaBody `json:"delta"`
		Usage wire.DeltaUsage  `json:"usage"`
	}
	typeOnly struct {
		Type string `json:"type"`
	}
)

func (s *MessagesStreamWriter) event(typ string, v any) error {
	switch e := v.(type) { // the per-token events, written without reflection
	case blockDeltaEvent:
		if b, ok := appendBlockDelta(s.scratch[:0], &e); ok {
			s.scratch = b
			return s.w.Event(typ, b)
		}
	case blockStopEvent:
		b := append(s.scratch[:0], `{"type":"content_block_stop","index":`...)
		s.scratch = append(strconv.AppendInt(b, int64(e.Index), 10), '}')
		return s.w.Event(typ, s.scratch)
	}
	s.buf.Reset()
	if s.enc == nil {
		s.enc = json.NewEncoder(&s.buf)
		// Anthropic does not HTML-escape; neither do we (fewer bytes, and
		// text arrives exactly as the model wrote it).
		s.enc.SetEscapeHTML(false)
	}
	if err := s.enc.Encode(v); err != nil {
		return err
	}
	return s.w.Event(typ, bytes.TrimSuffix(s.buf.Bytes(), []byte("\n")))
}

// appendBlockDelta appends a content_block_delta event as the encoder
// would write it (a JSON string escaped as jsontext does it, which differs
// from encoding/json only in escaping fewer characters); false for a delta
// type it does not know.
func appendBlockDelta(dst []byte, e *blockDeltaEvent) ([]byte, bool) {
	var field, value string
	switch d := &e.Delta; d.Type {
	case wire.DeltaText:
		field, value = `,"text":`, d.Text
	case wire.DeltaThinking:
		field, value = `,"thinking":`, d.Thinking
	case wire.DeltaSignature:
		field, value = `,"signature":`, d.Signature
	case wire.DeltaInputJSON:
		field, value = `,"partial_json":`, d.PartialJSON
	default:
		return nil, false
	}
	if value == "" {
		return nil, false // omitted by the encoder
	}
	dst = append(dst, `{"type":"content_block_delta","index":`...)
	dst = strconv.AppendInt(dst, int64(e.Index), 10)
	dst = append(dst, `,"delta":{"type":"`...)
	dst = append(dst, e.Delta.Type...)
	dst = append(dst, '"')
	dst = append(dst, field...)
	dst, _ = jsontext.AppendQuote(dst, value) // invalid UTF-8 becomes U+FFFD, as the encoder writes it
	return append(dst, '}', '}'), true
}

func (s *MessagesStreamWriter) start(u *openai.Usage) error {
	if s.started {
		return nil
	}
	s.started = true
	msg := wire.MessageResponse{ID: s.id, Type: "message", Role: wire.RoleAssistant, Model: s.model, Content: []wire.ContentBlock{}}
	if u != nil {
		msg.Usage = InboundUsage(u)
		msg.Usage.OutputTokens = 0
	}
	return s.event(wire.EventMessageStart, messageStartEvent{Type: wire.EventMessageStart, Message: msg})
}

// WriteChunk encodes one canonical chunk as zero or more Anthropic events.
func (s *MessagesStreamWriter) WriteChunk(c *openai.ChatChunk) error {
	if s.closed {
		return errors.New("anthropic: write to closed message stream")
	}
	if err := s.start(c.Usage); err != nil {
		return err
	}
	if c.Usage != nil {
		s.usage = c.Usage
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 {
			continue
		}
		if err := s.writeDelta(&ch.Delta); err != nil {
			return err
		}
		if ch.FinishReason != nil {
			s.finish = *ch.FinishReason
			if err := s.closeBlock(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *MessagesStreamWriter) writeDelta(d *openai.Delta) error {
	if d.ReasoningContent != nil && *d.ReasoningContent != "" {
		if err := s.delta(blockThinking, wire.StreamDelta{Type: wire.DeltaThinking, Thinking: *d.ReasoningContent}); err != nil {
			return err
		}
	}
	if d.ReasoningSignature != nil && *d.ReasoningSignature != "" {
		if err := s.delta(blockThinking, wire.StreamDelta{Type: wire.DeltaSignature, Signature: *d.ReasoningSignature}); err != nil {
			return err
		}
	}
	for _, t := range []*string{d.Content, d.Refusal} {
		if t != nil && *t != "" {
			if err := s.delta(blockText, wire.StreamDelta{Type: wire.DeltaText, Text: *t}); err != nil {
				return err
			}
		}
	}
	for j := range d.ToolCalls {
		if err := s.toolDelta(&d.ToolCalls[j], j); err != nil {
			return err
		}
	}
	return nil
}

// delta writes a text or thinking delta, opening a block of that kind first
// unless one is already open.
func (s *MessagesStreamWriter) delta(kind blockKind, d wire.StreamDelta) error {
	if !s.open || s.openKind != kind {
		var cb any = textStart{Type: wire.BlockText}
		if kind == blockThinking {
			cb = thinkingStart{Type: wire.BlockThinking}
		}
		if err := s.openBlock(kind, cb); err != nil {
			return err
		}
	}
	return s.event(wire.EventContentBlockDelta, blockDeltaEvent{Type: wire.EventContentBlockDelta, Index: s.openIndex, Delta: d})
}

func (s *MessagesStreamWriter) toolDelta(tc *openai.ToolCall, pos int) error {
	idx := pos
	if tc.Index != nil {
		idx = *tc.Index
	}
	block, known := s.toolBlocks[idx]
	if !known {
		id := toolUseID(tc.ID, s.id, idx)
		cb := wire.ContentBlock{Type: wire.BlockToolUse, ID: id, Name: tc.Function.Name, Input: emptyObject}
		if err := s.openBlock(blockTool, cb); err != nil {
			return err
		}
		block = s.openIndex
		s.toolBlocks[idx] = block
		s.sawTool = true
	}
	if tc.Function.Arguments == "" {
		return nil
	}
	// A fragment for an earlier tool call (upstreams that interleave
	// parallel calls) still goes to that call's block index, where SDKs
	// accumulate it.
	return s.event(wire.EventContentBlockDelta, blockDeltaEvent{Type: wire.EventContentBlockDelta, Index: block,
		Delta: wire.StreamDelta{Type: wire.DeltaInputJSON, PartialJSON: tc.Function.Arguments}})
}

func (s *MessagesStreamWriter) openBlock(kind blockKind, cb any) error {
	if err := s.closeBlock(); err != nil {
		return err
	}
	s.open, s.openKind, s.openIndex = true, kind, s.nextIndex
	s.nextIndex++
	return s.event(wire.EventContentBlockStart, blockStartEvent{Type: wire.EventContentBlockStart, Index: s.openIndex, ContentBlock: cb})
}

func (s *MessagesStreamWriter) closeBlock() error {
	if !s.open {
		return nil
	}
	s.open = false
	return s.event(wire.EventContentBlockStop, blockStopEvent{Type: wire.EventContentBlockStop, Index: s.openIndex})
}

// Close ends the message. With err == nil it closes the open block and
// writes message_delta (stop reason, usage) and message_stop; otherwise it
// writes an error event, the way Anthropic reports a failure after the
// response has started. Close is idempotent.
func (s *MessagesStreamWriter) Close(err error) error {
	if s.closed {
		return nil
	}
	s.closed = true
	if err != nil {
		return s.event(wire.EventError, wire.ErrorResponse{Type: wire.EventError, Error: streamErrorDetail(err)})
	}
	if err := s.start(nil); err != nil {
		return err
	}
	if err := s.closeBlock(); err != nil {
		return err
	}
	finish := s.finish
	if s.sawTool && (finish == "" || finish == openai.FinishStop) {
		finish = openai.FinishToolCalls
	}
	md := messageDeltaEvent{Type: wire.EventMessageDelta, Delta: messageDeltaBody{StopReason: StopReason(finish)}}
	if s.usage != nil {
		u := InboundUsage(s.usage)
		md.Usage = wire.DeltaUsage{OutputTokens: u.OutputTokens, InputTokens: &u.InputTokens,
			CacheReadInputTokens: &u.CacheReadInputTokens, CacheCreationInputTokens: &u.CacheCreationInputTokens}
	}
	if err := s.event(wire.EventMessageDelta, md); err != nil {
		return err
	}
	return s.event(wire.EventMessageStop, typeOnly{Type: wire.EventMessageStop})
}

// streamErrorDetail describes a mid-stream failure without leaking internal
// error text: only gateway-made API errors carry their message through.
func streamErrorDetail(err error) wire.ErrorDetail {
	var ae *openai.APIError
	switch {
	case errors.As(err, &ae):
		return wire.ErrorDetail{Type: ErrorType(ae.Status), Message: ae.Message}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return wire.ErrorDetail{Type: wire.ErrAPI, Message: "upstream stream ended before completion"}
	default:
		return wire.ErrorDetail{Type: wire.ErrAPI, Message: "upstream stream failed"}
	}
}
