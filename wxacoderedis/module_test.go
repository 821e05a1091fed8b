package wxacoderedis

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// coreModule is the path of the wxacode module.
const coreModule = "github.com/go-wxacode/wxacode"

// TestPublishable: the module imports no internal package of the core
// (another module's internals may change under it), and its go.mod
// requires a released version of the core, not a pseudo-version that only
// the replace line makes work.
func TestPublishable(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, coreModule+"/internal/") {
				t.Errorf("%s imports %s", f, path)
			}
		}
	}
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mod), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 2 && fields[0] == coreModule {
			if v := fields[1]; !strings.HasPrefix(v, "v") || strings.Count(v, "-") > 0 {
				t.Errorf("go.mod requires the core at %s, want a released version", v)
			}
			return
		}
	}
	t.Error("go.mod does not require github.com/go-wxacode/wxacode")
}
