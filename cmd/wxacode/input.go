package main

import (
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

// input is what readRows found: the rows, and the header's columns that
// it ignored.
type input struct {
	rows    []row
	ignored []string
}

// readRows reads the batch input from path ("-" for standard input). The
// format is chosen by the first line, after a UTF-8 byte order mark:
//   - a CSV header, exactly when one of its fields, trimmed, unquoted and
//     compared without case, is "scene". Its delimiter ("," ";" or tab) is
//     the file's. Columns come in any order; page and filename are used,
//     other columns ignored (so failures.csv is valid input);
//   - anything else: one scene per line; surrounding white space and blank
//     lines are ignored (a scene has no spaces). Lines may be of any length:
//     an over-long one fails as its own row.
//
// A missing or empty input, or a CSV record with the wrong number of
// fields, is an error.
func readRows(path string, stdin io.Reader) (input, error) {
	name := path
	var data []byte
	var err error
	if path == "-" {
		name = "standard input"
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return input{}, fmt.Errorf("input: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a BOM from spreadsheet exports
	first, _, _ := bytes.Cut(data, []byte("\n"))
	var in input
	if comma, cols, ok := csvHeader(string(bytes.TrimRight(first, "\r"))); ok {
		in, err = readCSV(data, comma, cols)
	} else {
		in.rows = readLines(data)
	}
	if err != nil {
		return input{}, fmt.Errorf("input %s: %w", name, err)
	}
	if len(in.rows) == 0 {
		return input{}, fmt.Errorf("input %s has no scenes", name)
	}
	return in, nil
}

// csvHeader recognises a CSV header line: one whose fields, split by ",",
// ";" or tab (tried in that order), include "scene". It returns the
// delimiter and the normalised column names.
func csvHeader(line string) (rune, []string, bool) {
	for _, comma := range []rune{',', ';', '\t'} {
		r := csv.NewReader(strings.NewReader(line))
		r.Comma = comma
		r.LazyQuotes = true
		fields, err := r.Read()
		if err != nil {
			continue
		}
		for i, f := range fields {
			fields[i] = strings.ToLower(strings.Trim(strings.TrimSpace(f), `"`))
		}
		for _, f := range fields {
			if f == "scene" {
				return comma, fields, true
			}
		}
	}
	return 0, nil, false
}

func readCSV(data []byte, comma rune, cols []string) (input, error) {
	var in input
	index := map[string]int{}
	for i, c := range cols {
		switch c {
		case "scene", "page", "filename":
			if _, dup := index[c]; dup {
				return input{}, fmt.Errorf("the header names %q twice", c)
			}
			index[c] = i
		default:
			in.ignored = append(in.ignored, c)
		}
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = comma
	r.FieldsPerRecord = len(cols)
	r.TrimLeadingSpace = true
	if _, err := r.Read(); err != nil { // the header
		return input{}, err
	}
	field := func(rec []string, col string) string {
		if i, ok := index[col]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return in, nil
		}
		if err != nil {
			return input{}, fmt.Errorf("bad CSV: %w", err)
		}
		line, _ := r.FieldPos(0)
		rw := row{line: line, scene: field(rec, "scene"), page: field(rec, "page"), filename: field(rec, "filename")}
		if rw.scene == "" && rw.page == "" && rw.filename == "" {
			continue
		}
		in.rows = append(in.rows, rw)
	}
}

// readLines reads one scene per line, whatever the length of a line.
func readLines(data []byte) []row {
	var rows []row
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		if s := strings.TrimSpace(string(line)); s != "" {
			rows = append(rows, row{line: n, scene: s})
		}
	}
	return rows
}
