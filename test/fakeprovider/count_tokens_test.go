package fakeprovider

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestCountTokens checks the Token Counting API against the usage of a
// Messages answer to the same prompt, and its errors.
func TestCountTokens(t *testing.T) {
	s := Start(Behavior{})
	defer s.Close()
	prompt := `"messages":[{"role":"user","content":"count these words for me please"}]`
	status, _, b := post(t, s.URL+"/v1/messages", `{"model":"m","max_tokens":10,`+prompt+`}`)
	var msg struct {
		Usage struct {
			InputTokens int `json:"input_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(b, &msg); err != nil || status != http.StatusOK {
		t.Fatalf("messages: %d %s", status, b)
	}
	status, _, b = post(t, s.URL+"/v1/messages/count_tokens", `{"model":"m",`+prompt+`}`)
	var count struct {
		InputTokens *int `json:"input_tokens"`
	}
	if err := json.Unmarshal(b, &count); err != nil || status != http.StatusOK || count.InputTokens == nil {
		t.Fatalf("count_tokens: %d %s", status, b)
	}
	if *count.InputTokens != msg.Usage.InputTokens {
		t.Errorf("count %d, usage %d", *count.InputTokens, msg.Usage.InputTokens)
	}

	status, _, b = post(t, s.URL+"/v1/messages/count_tokens", `{"model":`)
	if status != http.StatusBadRequest || !json.Valid(b) {
		t.Errorf("bad body: %d %s", status, b)
	}
	s.SetBehavior(Behavior{FailFirst: 100, FailStatus: 529})
	if status, _, _ = post(t, s.URL+"/v1/messages/count_tokens", `{"model":"m",`+prompt+`}`); status != 529 {
		t.Errorf("injected failure: status %d, want 529", status)
	}
}
