package batch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// row is one scene to mint, as read from the input.
type row struct {
	line     int32  // 1-based number of the line the record starts on
	long     bool   // the record was over maxRecord: scene is its beginning
	scene    string //
	page     string // "" = the Config's page
	filename string // "" = derived from the scene
}

// maxRecord is the longest input record read: far more than any row needs
// (a scene is at most 32 characters). A longer one becomes a row of its
// own that fails, and is skipped as it is read, never held whole.
const maxRecord = 64 << 10

// readRows reads the input a record at a time and hands each row to each
// in input order: memory follows the plan, never the file. It returns the
// header's columns that it ignored. The format is chosen by the first
// line, after a UTF-8 byte order mark:
//   - a CSV header, exactly when one of its fields, trimmed, unquoted and
//     compared without case, is "scene". Its delimiter ("," ";" or tab) is
//     the file's. Records are RFC 4180's: a quoted field may hold the
//     delimiter, "" for a quote, and line breaks. Columns come in any
//     order; page and filename are used, other columns ignored (so
//     failures.csv is valid input); empty fields are allowed with every
//     delimiter, tab included;
//   - anything else: one scene per line; surrounding white space and blank
//     lines are ignored (a scene has no spaces).
//
// A record (or line) over maxRecord bytes is a row marked long, whose
// scene is its first 64 bytes: it fails on its own. A quote left open
// runs, as RFC 4180 reads it, to the end of the input: that record fails
// as over-long. An empty input, or a CSV record with the wrong number of
// fields, is an error.
func readRows(ctx context.Context, r io.Reader, name string, each func(row)) ([]string, error) {
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
	h, err := newHeader(cols)
	if err != nil {
		return nil, err
	}
	records := &recordReader{lines: lines, comma: byte(comma)}
	for {
		rec, line, long, err := records.next()
		if errors.Is(err, io.EOF) {
			return h.ignored, nil
		}
		if err != nil {
			return nil, err
		}
		if long {
			each(row{line: line, scene: string(rec), long: true})
			continue
		}
		rw, ok, err := h.row(rec, line, comma)
		if err != nil {
			return nil, err
		}
		if ok {
			each(rw)
		}
	}
}

// header is a CSV header: where the columns used are, and the others.
type header struct {
	n       int
	index   map[string]int
	ignored []string
}

func newHeader(cols []string) (*header, error) {
	h := &header{n: len(cols), index: map[string]int{}}
	for i, c := range cols {
		switch c {
		case "scene", "page", "filename":
			if _, dup := h.index[c]; dup {
				return nil, fmt.Errorf("the header names %q twice", c)
			}
			h.index[c] = i
		default:
			h.ignored = append(h.ignored, c)
		}
	}
	return h, nil
}

// row parses one record; ok is false for a blank one.
func (h *header) row(rec []byte, line int32, comma rune) (row, bool, error) {
	if len(bytes.TrimSpace(rec)) == 0 {
		return row{}, false, nil
	}
	fields, err := csvRecord(rec, comma)
	if err != nil {
		return row{}, false, fmt.Errorf("bad CSV on line %d: %w", line, err)
	}
	if len(fields) != h.n {
		return row{}, false, fmt.Errorf("bad CSV on line %d: wrong number of fields (%d, the header has %d)", line, len(fields), h.n)
	}
	field := func(col string) string {
		if i, ok := h.index[col]; ok {
			return strings.TrimSpace(fields[i])
		}
		return ""
	}
	rw := row{line: line, scene: field("scene"), page: field("page"), filename: field("filename")}
	return rw, rw.scene != "" || rw.page != "" || rw.filename != "", nil
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

// csvRecord parses one record (which may span lines inside quotes).
// Leading spaces are trimmed only where the delimiter is not itself white
// space: with tabs, TrimLeadingSpace would eat the empty fields
// ("id=1\t\tfoo"). A record the splitter and encoding/csv read differently
// is an error, never two rows.
func csvRecord(rec []byte, comma rune) ([]string, error) {
	r := csv.NewReader(bytes.NewReader(rec))
	r.Comma = comma
	r.LazyQuotes = true
	r.TrimLeadingSpace = comma != '\t'
	r.FieldsPerRecord = -1
	fields, err := r.Read()
	if err != nil {
		return nil, err
	}
	if _, err := r.Read(); !errors.Is(err, io.EOF) {
		return nil, errors.New("a record that does not end where its quotes say")
	}
	return fields, nil
}

// recordReader joins lines into RFC 4180 records: a line ends its record
// unless a quoted field is still open at its end.
type recordReader struct {
	lines *lineReader
	comma byte
	buf   []byte
}

// quoting is where a scan is in a record.
type quoting int

const (
	fieldStart quoting = iota // before a field (after the delimiter or at the start)
	unquoted                  // in a field that did not start with a quote
	quoted                    // in a quoted field
	quoteSeen                 // in a quoted field, just after a quote
)

// next returns the next record without its final line end (line breaks
// inside quotes are kept as "\n"), the line it starts on, and whether it
// was over maxRecord (then the record is its first 64 bytes). It returns
// io.EOF after the last record.
func (rr *recordReader) next() (rec []byte, start int32, long bool, err error) {
	rr.buf = rr.buf[:0]
	state := fieldStart
	for first := true; ; first = false {
		line, lineLong, err := rr.lines.next()
		if errors.Is(err, io.EOF) && !first {
			return rr.buf, start, long, nil // a quote left open: the record ends with the input
		}
		if err != nil {
			return nil, 0, false, err
		}
		if first {
			start = rr.lines.n
		} else if !long {
			rr.buf = append(rr.buf, '\n')
		}
		state = rr.scan(state, line)
		switch {
		case long:
		case lineLong || len(rr.buf)+len(line) > maxRecord:
			long = true
			rr.buf = append(rr.buf, line...)
			rr.buf = rr.buf[:min(len(rr.buf), 64)]
		default:
			rr.buf = append(rr.buf, line...)
		}
		// A cut line's rest was skipped unread: its quotes are unknown,
		// so the record ends with it.
		if state != quoted || lineLong {
			return rr.buf, start, long, nil
		}
	}
}

// scan follows line's quotes from state, as encoding/csv reads them with
// LazyQuotes and (for a delimiter other than tab) TrimLeadingSpace.
func (rr *recordReader) scan(state quoting, line []byte) quoting {
	trim := rr.comma != '\t'
	for _, c := range line {
		switch state {
		case fieldStart:
			switch {
			case trim && (c == ' ' || c == '\t'):
			case c == '"':
				state = quoted
			case c == rr.comma:
			default:
				state = unquoted
			}
		case unquoted:
			if c == rr.comma {
				state = fieldStart
			}
		case quoted:
			if c == '"' {
				state = quoteSeen
			}
		case quoteSeen:
			switch c {
			case '"': // "" is a quote
				state = quoted
			case rr.comma:
				state = fieldStart
			default: // a lone quote inside (LazyQuotes): still quoted
				state = quoted
			}
		}
	}
	if state == quoteSeen {
		return fieldStart // the quote closed the field, and the line ends the record
	}
	return state
}

// lineReader reads lines of at most maxRecord bytes; of a longer line it
// keeps the first bytes and skips the rest as it reads. It stops with
// ctx's error when ctx ends (an endless input, such as /dev/zero, is then
// given up on).
type lineReader struct {
	ctx context.Context
	r   *bufio.Reader
	n   int32 // number of the line last returned
}

func newLineReader(ctx context.Context, r io.Reader) *lineReader {
	return &lineReader{ctx: ctx, r: bufio.NewReaderSize(r, maxRecord)}
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
