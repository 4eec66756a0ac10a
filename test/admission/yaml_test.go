package admission_test

import (
	"bytes"
)

// splitDocs splits a multi-document YAML file, dropping empty documents.
func splitDocs(raw []byte) [][]byte {
	var out [][]byte
	for _, d := range bytes.Split(raw, []byte("\n---")) {
		if len(bytes.TrimSpace(d)) > 0 {
			out = append(out, d)
		}
	}
	return out
}
