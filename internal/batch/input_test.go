package batch

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// readAll reads content with readRows.
func readAll(t *testing.T, content string) ([]row, error) {
	t.Helper()
	var got []row
	_, err := readRows(context.Background(), strings.NewReader(content), "test", func(rw row) { got = append(got, rw) })
	return got, err
}

func TestReadRows(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []row
	}{
		{"lines", "a=1\r\n\n  b=2  \n", []row{{line: 1, scene: "a=1"}, {line: 3, scene: "b=2"}}},
		{"csv with all columns", "scene,page,filename\n\"a=1,2\",pages/x,poster\nb=2,,\n", []row{{line: 2, scene: "a=1,2", page: "pages/x", filename: "poster"}, {line: 3, scene: "b=2"}}},
		{"csv columns in any order, BOM", "\xef\xbb\xbfSCENE,filename\nc=3,f3\n", []row{{line: 2, scene: "c=3", filename: "f3"}}},
		{"a comma scene is not a header", "scene=1,2\n", []row{{line: 1, scene: "scene=1,2"}}},
		{"page before scene", "page,scene\npages/a,s=1\n", []row{{line: 2, scene: "s=1", page: "pages/a"}}},
		{"scene alone", "scene\ns=1\n", []row{{line: 2, scene: "s=1"}}},
		{"semicolons, quoted and padded", "\" Page \";\"SCENE\"\npages/b;s=2\n", []row{{line: 2, scene: "s=2", page: "pages/b"}}},
		{"tabs", "filename\tscene\nf\ts=3\n", []row{{line: 2, scene: "s=3", filename: "f"}}},
		{"tabs keep empty fields", "scene\tpage\tfilename\nid=1\t\tfoo\n", []row{{line: 2, scene: "id=1", filename: "foo"}}},
		{"failures.csv fed back", "scene,errcode,errmsg\ns=4,41030,\"invalid page, rid: 1\"\n", []row{{line: 2, scene: "s=4"}}},
		{"scenes that look like words", "scenery\nscene=1\n", []row{{line: 1, scene: "scenery"}, {line: 2, scene: "scene=1"}}},
		// RFC 4180: a quoted field holds line breaks, delimiters and "".
		{"a quoted line break", "scene,filename\na=1,\"x\ny\"\nb=2,z\n", []row{{line: 2, scene: "a=1", filename: "x\ny"}, {line: 4, scene: "b=2", filename: "z"}}},
		{"quoted CRLF and blank lines", "scene,filename\r\na=1,\"x\r\n\r\ny\"\r\nb=2,\r\n", []row{{line: 2, scene: "a=1", filename: "x\n\ny"}, {line: 5, scene: "b=2"}}},
		{"quotes inside quotes", "scene,filename\na=1,\"say \"\"hi\"\", then\n,go\"\n", []row{{line: 2, scene: "a=1", filename: "say \"hi\", then\n,go"}}},
		{"a padded quoted field", "scene, filename\na=1, \"p\nq\"\n", []row{{line: 2, scene: "a=1", filename: "p\nq"}}},
		{"a lone quote in a field", "scene,filename\na=1,x\"y\nb=2,\"u\"v\"\n", []row{{line: 2, scene: "a=1", filename: "x\"y"}, {line: 3, scene: "b=2", filename: "u\"v"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(t, tc.content)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("rows = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestReadRowsBoundsRecords: a record over 64 KiB, whether one line or
// many inside quotes, is one long row, never held whole; the rows after it
// are read as usual. A quote left open runs to the end of the input.
func TestReadRowsBoundsRecords(t *testing.T) {
	longLine := "scene,filename\na=1," + strings.Repeat("x", maxRecord+10) + "\nb=2,y\n"
	manyLines := "scene,filename\na=1,\"" + strings.Repeat("x\n", maxRecord/2+10) + "\"\nb=2,y\n"
	open := "scene,filename\na=1,\"x\nb=2,y\n"
	tests := []struct {
		name, content string
		want          []string // scene of each row, "LONG" for a long one
	}{
		{"one long line", longLine, []string{"LONG", "b=2"}},
		{"many lines in quotes", manyLines, []string{"LONG", "b=2"}},
		{"an open quote", open, []string{"a=1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := readAll(t, tc.content)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, rw := range rows {
				if rw.long {
					if len(rw.scene) > 64 {
						t.Errorf("a long row keeps %d bytes", len(rw.scene))
					}
					got = append(got, "LONG")
					continue
				}
				got = append(got, rw.scene)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("rows %v, want %v", got, tc.want)
			}
		})
	}
}

// TestReadRowsErrors: an input that is not a batch's is an error, with the
// line it starts on.
func TestReadRowsErrors(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"empty", "", "no scenes"},
		{"header only", "scene,page\n", "no scenes"},
		{"too few fields", "scene,page\na=1\n", "line 2: wrong number of fields"},
		{"too few after a quoted break", "scene,page,filename\na=1,,\"x\ny\"\nb=2\n", "line 4: wrong number of fields"},
		{"a column twice", "scene,scene\na,b\n", `names "scene" twice`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := readAll(t, tc.content); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// FuzzRecordSplit: whatever the input, the splitter and encoding/csv
// agree on where records end (csvRecord's second Read), or the row is an
// error; nothing panics, and no row holds more than maxRecord bytes.
func FuzzRecordSplit(f *testing.F) {
	for _, s := range []string{"a,\"b\nc\",d\n", "\"\"\"\n", "a,\"b\"c\n\"", " \"x\",y\n", "\"a\"\"\n\"\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = readRows(context.Background(), strings.NewReader("scene,filename\n"+s), "fuzz", func(rw row) {
			if len(rw.scene)+len(rw.filename) > maxRecord {
				t.Fatalf("a row of %d bytes", len(rw.scene)+len(rw.filename))
			}
		})
	})
}
