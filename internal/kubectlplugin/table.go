package kubectlplugin

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"sigs.k8s.io/yaml"
)

// ANSI styles. Only the status words carry colour, so a table stays
// readable on any background.
type style string

const (
	plain  style = ""
	green  style = "\x1b[32m"
	yellow style = "\x1b[33m"
	red    style = "\x1b[31m"
	bold   style = "\x1b[1m"
	faint  style = "\x1b[2m"
	cyan   style = "\x1b[36m"
	reset        = "\x1b[0m"
)

// cell is one table cell: its text and how to colour it.
type cell struct {
	text  string
	style style
}

func c(text string) cell               { return cell{text: text} }
func styled(text string, s style) cell { return cell{text: text, style: s} }

// printer writes text with or without colour.
type printer struct {
	w     io.Writer
	color bool
}

func (p printer) paint(text string, s style) string {
	if !p.color || s == plain || text == "" {
		return text
	}
	return string(s) + text + reset
}

func (p printer) println(parts ...string) {
	fmt.Fprintln(p.w, strings.Join(parts, ""))
}

// table writes rows aligned in columns, measuring the text without its
// colour codes (text/tabwriter would count them). indent goes before
// every row.
func (p printer) table(indent string, header []string, rows [][]cell) {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, row := range rows {
		for i, cl := range row {
			if n := utf8.RuneCountInString(cl.text); n > widths[i] {
				widths[i] = n
			}
		}
	}
	line := func(cells []cell) {
		var b strings.Builder
		b.WriteString(indent)
		for i, cl := range cells {
			if i == len(cells)-1 {
				b.WriteString(p.paint(cl.text, cl.style))
				break
			}
			b.WriteString(p.paint(cl.text, cl.style))
			b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cl.text)+3))
		}
		fmt.Fprintln(p.w, strings.TrimRight(b.String(), " "))
	}
	head := make([]cell, len(header))
	for i, h := range header {
		head[i] = styled(h, faint)
	}
	line(head)
	for _, row := range rows {
		line(row)
	}
}

// writeStructured prints v as json or yaml, the -o forms.
func writeStructured(w io.Writer, format string, v any) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		data, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	return fmt.Errorf("unknown output format %q: use json or yaml", format)
}

func validateOutput(format string) error {
	switch format {
	case "", "json", "yaml":
		return nil
	}
	return fmt.Errorf("--output must be json or yaml, not %q", format)
}

// relative says how far t is from now in the largest sensible unit:
// "in 59d", "3m ago".
func relative(t, now time.Time) string {
	d := t.Sub(now)
	if d >= 0 {
		return "in " + shortDuration(d)
	}
	return shortDuration(-d) + " ago"
}

func shortDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

// orDash shows an empty value as "-", as kubectl does.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
