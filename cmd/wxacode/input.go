package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// row is one scene to mint, as read from the input.
type row struct {
	line     int32  // 1-based line number in the file
	long     bool   // the line was over maxLine: scene is its beginning
	scene    string //
	page     string // "" = the -page flag
	filename string // "" = derived from the scene
}

// maxLine is the longest input line read: far more than any row needs (a
// scene is at most 32 characters). A longer line becomes a row of its
// own that fails, and is skipped as it is read, never held whole.
const maxLine = 64 << 10

// readRows reads the batch input from path ("-" for standard input), one
// line at a time, and hands each row to each in input order: memory
// follows the plan, never the file. It returns the header's columns that
// it ignored. The format is chosen by the first line, after a UTF-8 byte order mark:
//   - a CSV header, exactly when one of its fields, trimmed, unquoted and
//     compared without case, is "scene". Its delimiter ("," ";" or tab) is
//     the file's, and each line is one record (no field of a row can hold
//     a line break). Columns come in any order; page and filename are
//     used, other columns ignored (so failures.csv is valid input); empty
//     fields are allowed with every delimiter, tab included;
//   - anything else: one scene per line; surrounding white space and blank
//     lines are ignored (a scene has no spaces).
//
// A line over maxLine bytes is a row marked long, whose scene is its
// first 64 bytes: it fails on its own. A missing or empty input, or a CSV record
// with the wrong number of fields, is an error.
func readRows(ctx context.Context, path string, stdin io.Reader, each func(row)) ([]string, error) {
	r, name, err := openInput(path, stdin)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return readOpenRows(ctx, r, name, each)
}

// openInput opens the input: the file at path, or stdin for "-". name is
// what errors call it.
func openInput(path string, stdin io.Reader) (r io.ReadCloser, name string, err error) {
	if path == "-" {
		return io.NopCloser(stdin), "standard input", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, path, fmt.Errorf("input: %w", err)
	}
	return f, path, nil
}

// readOpenRows is readRows on an input already open.
func readOpenRows(ctx context.Context, r io.Reader, name string, each func(row)) ([]string, error) {
	lines := newLineReader(ctx, r)
	n := 0
	ignored, err := parseRows(lines, func(rw row) { n++; each(rw) })
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", name, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("input %s has no scenes", name)
	}
	return ignored, nil
}

// parseRows reads every row from lines, handing each to each, and returns
// the CSV columns it ignored.
func parseRows(lines *lineReader, each func(row)) ([]string, error) {
	var ignored []string
	first, long, err := lines.next()
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	first = bytes.TrimPrefix(first, []byte("\xef\xbb\xbf")) // a BOM from spreadsheet exports
	comma, cols, isCSV := csvHeader(string(first))
	if !isCSV {
		for ; err == nil; first, long, err = lines.next() {
			if s := strings.TrimSpace(string(first)); s != "" {
				each(row{line: lines.n, scene: s, long: long})
			}
		}
		return nil, ignoreEOF(err)
	}
	index := map[string]int{}
	for i, c := range cols {
		switch c {
		case "scene", "page", "filename":
			if _, dup := index[c]; dup {
				return nil, fmt.Errorf("the header names %q twice", c)
			}
			index[c] = i
		default:
			ignored = append(ignored, c)
		}
	}
	field := func(rec []string, col string) string {
		if i, ok := index[col]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	for {
		line, long, err := lines.next()
		if errors.Is(err, io.EOF) {
			return ignored, nil
		}
		if err != nil {
			return nil, err
		}
		if long {
			each(row{line: lines.n, scene: string(line), long: true})
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		rec, err := csvRecord(line, comma)
		if err != nil {
			return nil, fmt.Errorf("bad CSV on line %d: %w", lines.n, err)
		}
		if len(rec) != len(cols) {
			return nil, fmt.Errorf("bad CSV on line %d: wrong number of fields (%d, the header has %d)", lines.n, len(rec), len(cols))
		}
		rw := row{line: lines.n, scene: field(rec, "scene"), page: field(rec, "page"), filename: field(rec, "filename")}
		if rw.scene == "" && rw.page == "" && rw.filename == "" {
			continue
		}
		each(rw)
	}
}

func ignoreEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// csvHeader recognises a CSV header line: one whose fields, split by ",",
// ";" or tab (tried in that order), include "scene". It returns the
// delimiter and the normalised column names.
func csvHeader(line string) (rune, []string, bool) {
	for _, comma := range []rune{',', ';', '\t'} {
		fields, err := csvRecord([]byte(line), comma)
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

// csvRecord parses one line as a CSV record. Leading spaces are trimmed
// only where the delimiter is not itself white space: with tabs,
// TrimLeadingSpace would eat the empty fields ("id=1\t\tfoo").
func csvRecord(line []byte, comma rune) ([]string, error) {
	r := csv.NewReader(bytes.NewReader(line))
	r.Comma = comma
	r.LazyQuotes = true
	r.TrimLeadingSpace = comma != '\t'
	r.FieldsPerRecord = -1
	return r.Read()
}

// lineReader reads lines of at most maxLine bytes; of a longer line it
// keeps the first bytes and skips the rest as it reads. It stops with
// ctx's error when ctx ends (an endless input, such as /dev/zero, is then
// given up on).
type lineReader struct {
	ctx context.Context
	r   *bufio.Reader
	n   int32 // number of the line last returned
}

func newLineReader(ctx context.Context, r io.Reader) *lineReader {
	return &lineReader{ctx: ctx, r: bufio.NewReaderSize(r, maxLine)}
}

// next returns the next line without its end (\n or \r\n) and whether it
// was cut; io.EOF after the last line. The slice is valid until the next
// call.
func (l *lineReader) next() (line []byte, long bool, err error) {
	if err := l.ctx.Err(); err != nil {
		return nil, false, err
	}
	line, err = l.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// Keep the beginning (the buffer is reused by the reads below).
		long, line = true, bytes.Clone(line[:64])
		for errors.Is(err, bufio.ErrBufferFull) {
			if cerr := l.ctx.Err(); cerr != nil {
				return nil, false, cerr
			}
			_, err = l.r.ReadSlice('\n') // skip the rest, a buffer at a time
		}
	}
	if errors.Is(err, io.EOF) && len(line) > 0 {
		err = nil // a last line without a newline
	}
	if err != nil {
		return nil, false, err
	}
	l.n++
	if !long {
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
	}
	return line, long, nil
}
