package fakeprovider

import (
	"net/http"
)

// countTokensPath is Anthropic's Token Counting API.
const countTokensPath = "/v1/messages/count_tokens"

// countTokens answers the Token Counting API ({"input_tokens": N}) with
// the input tokens the fake model reports in the usage of a Messages
// answer to the same prompt, so a count and the later usage agree.
func countTokens(w http.ResponseWriter, body []byte) {
	conv, _, err := parseAnthropic(body, false)
	if err != nil {
		anthropicDialect{}.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, map[string]any{"input_tokens": answer(conv, "").Prompt})
}
