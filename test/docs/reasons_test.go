// Package docs checks that the documentation keeps up with the code.
package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const (
	apiDir          = "../../api/v1alpha1"
	troubleshooting = "../../docs/troubleshooting.md"
)

// reasons collects every string constant named Reason* in the API package:
// the reasons a condition or a message status can carry.
func reasons(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(apiDir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || strings.HasPrefix(filepath.Base(f), "zz_generated") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Reason") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Errorf("%s: %s is not a string literal; the test cannot read it", fset.Position(name.Pos()), name.Name)
						continue
					}
					value, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					out[value] = name.Name
				}
			}
		}
	}
	if len(out) < 10 {
		t.Fatalf("found only %d reasons in %s; the parse is broken", len(out), apiDir)
	}
	return out
}

// TestEveryReasonIsDocumented fails when a reason the code can set has no
// entry in docs/troubleshooting.md: a "### Reason" heading, or a row of the
// messages table starting with "| `Reason` |".
func TestEveryReasonIsDocumented(t *testing.T) {
	data, err := os.ReadFile(troubleshooting)
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	heading := regexp.MustCompile("(?m)^###\\s+([A-Za-z]+)\\s*$")
	row := regexp.MustCompile("(?m)^\\|\\s*`([A-Za-z]+)`\\s*\\|")
	for _, m := range heading.FindAllStringSubmatch(string(data), -1) {
		documented[m[1]] = true
	}
	for _, m := range row.FindAllStringSubmatch(string(data), -1) {
		documented[m[1]] = true
	}
	var missing []string
	for value, name := range reasons(t) {
		if !documented[value] {
			missing = append(missing, value+" ("+name+")")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("%s has no entry for reason %s: add a \"### %s\" section", troubleshooting, m, strings.Fields(m)[0])
	}
}
