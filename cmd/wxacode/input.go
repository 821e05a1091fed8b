package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// row is one scene to mint, as read from the input.
type row struct {
	line     int    // 1-based line (record) number in the file
	scene    string //
	page     string // "" = the -page flag
	filename string // "" = derived from the scene
}

// readRows reads the batch input. The format is chosen by the first line:
//   - a CSV header whose first column is "scene" and whose columns are
//     among scene, page and filename (e.g. "scene,page,filename"): CSV,
//     one code per record, with quoting as in RFC 4180;
//   - anything else: one scene per line; surrounding white space and blank
//     lines are ignored (a scene has no spaces).
//
// A missing or empty file, or a CSV record with the wrong number of fields,
// is an error.
func readRows(path string) ([]row, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a BOM from spreadsheet exports
	first, _, _ := bytes.Cut(data, []byte("\n"))
	var rows []row
	if cols, ok := csvHeader(string(bytes.TrimSpace(first))); ok {
		rows, err = readCSV(data, cols)
	} else {
		rows, err = readLines(data)
	}
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", path, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("input %s has no scenes", path)
	}
	return rows, nil
}

// csvHeader recognises a CSV header line and returns its column names.
func csvHeader(line string) ([]string, bool) {
	cols := strings.Split(strings.ToLower(line), ",")
	if len(cols) < 2 || strings.TrimSpace(cols[0]) != "scene" {
		return nil, false
	}
	seen := map[string]bool{}
	for i, c := range cols {
		c = strings.TrimSpace(c)
		if (c != "scene" && c != "page" && c != "filename") || seen[c] {
			return nil, false
		}
		seen[c] = true
		cols[i] = c
	}
	return cols, true
}

func readCSV(data []byte, cols []string) ([]row, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = len(cols)
	r.TrimLeadingSpace = true
	if _, err := r.Read(); err != nil { // the header
		return nil, err
	}
	var rows []row
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("bad CSV: %w", err)
		}
		line, _ := r.FieldPos(0)
		rw := row{line: line}
		for i, c := range cols {
			v := strings.TrimSpace(rec[i])
			switch c {
			case "scene":
				rw.scene = v
			case "page":
				rw.page = v
			case "filename":
				rw.filename = v
			}
		}
		if rw.scene == "" && rw.page == "" && rw.filename == "" {
			continue
		}
		rows = append(rows, rw)
	}
}

func readLines(data []byte) ([]row, error) {
	var rows []row
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			rows = append(rows, row{line: n, scene: s})
		}
	}
	return rows, sc.Err()
}
