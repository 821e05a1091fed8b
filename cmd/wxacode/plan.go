package main

import (
	"fmt"
	"strconv"
	"strings"
)

// job is one code to make, and the names to write it under: the rows of
// the input that ask for the same request under different file names.
type job struct {
	key      requestKey
	rows     []row    // the rows, each with its own name
	bases    []string // their file names without extension, as rows
	copyFrom string   // a file in the directory already holding this code, or ""
}

// batchPlan is what reading the input decided.
type batchPlan struct {
	jobs       []*job
	fails      []failure // found locally
	rows       int       // rows read
	present    int       // names already holding their code
	trusted    int       // of those, images without a record of their request
	duplicates int       // rows repeating an earlier row's request and name
}

// planBatch turns rows into jobs: duplicate rows dropped, rows of one
// request grouped into one job, invalid scenes and unsafe or clashing file
// names failed locally, and names that already hold their code skipped
// (unless force). A complete image counts only if man records it for the
// row's request, or if man has no record of it (then it is trusted). On a
// case-insensitive directory, names that differ only in case clash.
func planBatch(rows []row, f *codeFlags, dir string, force, foldCase bool, man *manifest) batchPlan {
	p := batchPlan{rows: len(rows)}
	byKey := make(map[requestKey]*job)
	seen := make(map[string]bool) // key + name of the rows planned
	names := make(map[string]int) // file base (folded on such a directory) -> line that took it
	for _, rw := range rows {
		fail := func(msg string) { p.fails = append(p.fails, failure{row: rw, errmsg: msg}) }
		if rw.long {
			fail("line is over " + strconv.Itoa(maxLine) + " bytes: not a scene")
			continue
		}
		base := fileBase(rw.scene)
		if rw.filename != "" {
			var err error
			if base, err = checkFilename(rw.filename); err != nil {
				fail(err.Error())
				continue
			}
		}
		req := f.request(rw.scene, rw.page)
		key, _ := parseKey(req.Key())
		if seen[string(key[:])+base] {
			p.duplicates++
			continue
		}
		seen[string(key[:])+base] = true
		if err := req.Validate(); err != nil {
			fail(strings.TrimPrefix(err.Error(), "wxacode: "))
			continue
		}
		nameKey := base
		if foldCase {
			nameKey = strings.ToLower(base)
		}
		if line, taken := names[nameKey]; taken {
			msg := fmt.Sprintf("file name %s is also the name for line %d", base, line)
			if foldCase {
				msg += " (the output directory ignores case)"
			}
			fail(msg)
			continue
		}
		names[nameKey] = rw.line
		j := byKey[key]
		if j == nil {
			j = &job{key: key}
			byKey[key] = j
			p.jobs = append(p.jobs, j)
		}
		if !force {
			if name := presentImage(dir, base); name != "" {
				rec, recorded := man.lookup(name)
				switch {
				case !recorded:
					p.present++
					p.trusted++
					continue
				case rec == key:
					p.present++
					j.copyFrom = name
					continue
				}
				// Minted for another request: minted again.
			}
		}
		j.rows = append(j.rows, rw)
		j.bases = append(j.bases, base)
	}
	// Jobs whose every name is done drop out.
	kept := p.jobs[:0]
	for _, j := range p.jobs {
		if len(j.rows) > 0 {
			kept = append(kept, j)
		}
	}
	p.jobs = kept
	return p
}
