package anthropic

import (
	"io"

	json "github.com/go-json-experiment/json/v1"
	wire "tollgate.dev/tollgate/dataplane/schema/anthropic"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/sse"
	"tollgate.dev/tollgate/dataplane/translate"
)

// ChatStream translates an Anthropic event stream into OpenAI chunks, one
// upstream event at a time.
func (Translator) ChatStream(body io.Reader, _ translate.Target, meta translate.StreamMeta) translate.ChunkReader {
	return NewStreamReader(body, meta)
}

// blockKind is what an Anthropic content block turns into.
type blockKind uint8

const (
	blockIgnored  blockKind = iota // redacted_thinking, server tools, unknown
	blockText                      // content deltas
	blockThinking                  // reasoning_content deltas
	blockTool                      // tool_calls deltas
	blockJSON                      // synthetic JSON-mode tool: content deltas
)

type blockState struct {
	kind blockKind
	// toolIndex is the OpenAI tool_calls index: tool_use blocks counted
	// from 0, whatever their Anthropic block index.
	toolIndex int
	// gotInput is set once a non-empty input fragment was sent, so a tool
	// with no input still ends with valid JSON arguments ("{}").
	gotInput bool
}

// StreamReader is the ChunkReader for Anthropic streams. It reads upstream
// only inside Next and holds at most the chunks one event produces.
type StreamReader struct {
	src  *sse.Reader
	meta translate.StreamMeta

	out translate.ChunkQueue

	ev         wire.StreamEvent
	blocks     map[int]*blockState
	nextTool   int
	realTool   bool
	roleSent   bool
	finishSent bool
	stopReason string
	usage      wire.Usage
	haveUsage  bool
}

// NewStreamReader returns a reader over an Anthropic SSE body.
func NewStreamReader(body io.Reader, meta translate.StreamMeta) *StreamReader {
	return &StreamReader{src: sse.NewReader(body, 0), meta: meta, blocks: make(map[int]*blockState, 4)}
}

// Next returns the next OpenAI chunk; see translate.ChunkReader.
func (r *StreamReader) Next() (*openai.ChatChunk, error) {
	for {
		if c, err := r.out.Pop(); c != nil || err != nil {
			return c, err
		}
		ev, err := r.src.Next()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // no message_stop
			}
			r.out.End(err)
			continue
		}
		if len(ev.Data) == 0 {
			continue
		}
		r.ev = wire.StreamEvent{}
		if json.Unmarshal(ev.Data, &r.ev) != nil {
			r.out.End(upstreamMalformed("malformed stream event"))
			continue
		}
		r.handle(&r.ev)
	}
}

func (r *StreamReader) handle(ev *wire.StreamEvent) {
	switch ev.Type {
	case wire.EventMessageStart:
		if ev.Message != nil {
			r.usage = ev.Message.Usage
			r.haveUsage = true
		}
		empty := ""
		r.emit(openai.Delta{Content: &empty}, nil)
	case wire.EventContentBlockStart:
		r.blockStart(ev)
	case wire.EventContentBlockDelta:
		r.blockDelta(ev)
	case wire.EventContentBlockStop:
		if ev.Index == nil {
			return
		}
		b := r.blocks[*ev.Index]
		if b == nil || b.gotInput {
			return
		}
		switch b.kind {
		case blockTool:
			r.emit(openai.Delta{ToolCalls: []openai.ToolCall{{Index: intPtr(b.toolIndex), Function: openai.FunctionCall{Arguments: "{}"}}}}, nil)
		case blockJSON:
			s := "{}"
			r.emit(openai.Delta{Content: &s}, nil)
		}
		b.gotInput = true
	case wire.EventMessageDelta:
		if ev.Delta != nil && ev.Delta.StopReason != nil {
			r.stopReason = *ev.Delta.StopReason
		}
		if ev.Usage != nil {
			r.haveUsage = true
			mergeDeltaUsage(&r.usage, ev.Usage)
		}
		if ev.Delta != nil && ev.Delta.StopReason != nil {
			r.finish()
		}
	case wire.EventMessageStop:
		if !r.roleSent {
			// A real stream always opens with message_start: an answer
			// that is nothing but its end was cut or garbled upstream.
			r.out.End(upstreamMalformed("stream ended before message_start"))
			return
		}
		r.finish()
		if r.haveUsage {
			r.out.Push(&openai.ChatChunk{
				ID: r.meta.ID, Object: openai.ObjectChatCompletionChunk, Created: r.meta.Created, Model: r.meta.Model,
				Choices: []openai.ChunkChoice{}, Usage: ConvertUsage(r.usage),
			})
		}
		r.out.End(io.EOF)
	case wire.EventError:
		r.out.End(streamError(ev.Error))
	}
	// ping and event types added by later API versions carry nothing to translate.
}

func (r *StreamReader) blockStart(ev *wire.StreamEvent) {
	if ev.Index == nil || ev.ContentBlock == nil {
		return
	}
	cb := ev.ContentBlock
	b := &blockState{}
	r.blocks[*ev.Index] = b
	switch cb.Type {
	case wire.BlockText:
		b.kind = blockText
		if cb.Text != "" {
			s := cb.Text
			r.emit(openai.Delta{Content: &s}, nil)
		}
	case wire.BlockThinking:
		b.kind = blockThinking
		if cb.Thinking != "" {
			s := cb.Thinking
			r.emit(openai.Delta{ReasoningContent: &s}, nil)
		}
		if cb.Signature != "" {
			s := cb.Signature
			r.emit(openai.Delta{ReasoningSignature: &s}, nil)
		}
	case wire.BlockToolUse:
		args := ""
		if in := compactJSON(cb.Input); in != "{}" {
			args, b.gotInput = in, true
		}
		if cb.Name == JSONToolName {
			b.kind = blockJSON
			if args != "" {
				r.emit(openai.Delta{Content: &args}, nil)
			}
			return
		}
		if cb.ID == "" || cb.Name == "" {
			r.out.End(upstreamMalformed("tool_use block without an id or a name"))
			return
		}
		b.kind, b.toolIndex = blockTool, r.nextTool
		r.nextTool++
		r.realTool = true
		r.emit(openai.Delta{ToolCalls: []openai.ToolCall{{
			Index: intPtr(b.toolIndex), ID: cb.ID, Type: "function",
			Function: openai.FunctionCall{Name: cb.Name, Arguments: args},
		}}}, nil)
	}
}

func (r *StreamReader) blockDelta(ev *wire.StreamEvent) {
	if ev.Index == nil || ev.Delta == nil {
		return
	}
	b := r.blocks[*ev.Index]
	if b == nil {
		return
	}
	d := ev.Delta
	switch d.Type {
	case wire.DeltaText:
		if d.Text != "" && b.kind == blockText {
			s := d.Text
			r.emit(openai.Delta{Content: &s}, nil)
		}
	case wire.DeltaThinking:
		if d.Thinking != "" && b.kind == blockThinking {
			s := d.Thinking
			r.emit(openai.Delta{ReasoningContent: &s}, nil)
		}
	case wire.DeltaSignature:
		if d.Signature != "" && b.kind == blockThinking {
			s := d.Signature
			r.emit(openai.Delta{ReasoningSignature: &s}, nil)
		}
	case wire.DeltaInputJSON:
		if d.PartialJSON == "" {
			return
		}
		s := d.PartialJSON
		switch b.kind {
		case blockTool:
			b.gotInput = true
			r.emit(openai.Delta{ToolCalls: []openai.ToolCall{{Index: intPtr(b.toolIndex), Function: openai.FunctionCall{Arguments: s}}}}, nil)
		case blockJSON:
			b.gotInput = true
			r.emit(openai.Delta{Content: &s}, nil)
		}
	}
}

// finish emits the single finish_reason chunk.
func (r *StreamReader) finish() {
	if r.finishSent {
		return
	}
	r.finishSent = true
	fr := FinishReason(r.stopReason, r.realTool)
	r.emit(openai.Delta{}, &fr)
}

// emit queues one chunk; the first chunk of the stream carries the role.
func (r *StreamReader) emit(d openai.Delta, finish *string) {
	if !r.roleSent {
		d.Role = openai.RoleAssistant
		r.roleSent = true
	}
	r.out.Push(&openai.ChatChunk{
		ID: r.meta.ID, Object: openai.ObjectChatCompletionChunk, Created: r.meta.Created, Model: r.meta.Model,
		Choices: []openai.ChunkChoice{{Index: 0, Delta: d, FinishReason: finish}},
	})
}

func intPtr(i int) *int { return &i }

// streamError is the error an upstream error event reports.
func streamError(e *wire.ErrorDetail) *openai.APIError {
	typ, msg := "", "anthropic: upstream stream error"
	if e != nil {
		typ = e.Type
		if e.Message != "" {
			msg = e.Message
		}
	}
	return ErrorFromType(0, typ, msg)
}

// mergeDeltaUsage applies a message_delta's usage, which is cumulative:
// output tokens always, input and cache counts when the event has them.
func mergeDeltaUsage(u *wire.Usage, d *wire.DeltaUsage) {
	u.OutputTokens = d.OutputTokens
	if d.InputTokens != nil {
		u.InputTokens = *d.InputTokens
	}
	if d.CacheReadInputTokens != nil {
		u.CacheReadInputTokens = *d.CacheReadInputTokens
	}
	if d.CacheCreationInputTokens != nil {
		u.CacheCreationInputTokens = *d.CacheCreationInputTokens
	}
}
