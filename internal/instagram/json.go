package instagram

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// Instagram is not consistent about JSON types (user_id is a number in one
// answer and a string in another; permissions a list or a comma string), so
// answers are decoded into these tolerant types.

// flexString accepts a JSON string or number and keeps the number's exact
// text: user IDs exceed float64 precision.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return errors.New("expected a string or a number")
		}
		*f = flexString(n.String())
	}
	return nil
}

// flexInt accepts a JSON number or a numeric string.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	if s == "" {
		*f = 0
		return nil
	}
	if n, err := strconv.ParseInt(string(s), 10, 64); err == nil {
		*f = flexInt(n)
		return nil
	}
	n, err := strconv.ParseFloat(string(s), 64)
	if err != nil {
		return errors.New("expected an integer")
	}
	*f = flexInt(n)
	return nil
}

// flexList accepts a JSON array of strings or one comma-separated string.
type flexList []string

func (f *flexList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*f = nil
		return nil
	}
	if len(b) > 0 && b[0] == '[' {
		var items []flexString
		if err := json.Unmarshal(b, &items); err != nil {
			return err
		}
		out := make([]string, 0, len(items))
		for _, it := range items {
			if s := strings.TrimSpace(string(it)); s != "" {
				out = append(out, s)
			}
		}
		*f = out
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("expected a list or a comma-separated string")
	}
	*f = splitComma(s)
	return nil
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
