package main

import (
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// job is one code to make and the first name to write it under. Further
// names of the same code (rare) and a file already holding the code live
// in the plan's side tables, so that a job is 80 bytes and a batch of
// 100,000 rows holds 8 MB of jobs.
type job struct {
	key   requestKey
	first row // the first row whose name needs the code
}

// base returns the file name, without extension, that rw writes: its
// filename (checked when planned), or one derived from its scene.
func (rw row) base() string {
	if rw.filename == "" {
		return fileBase(rw.scene)
	}
	base, _ := checkFilename(rw.filename)
	return base
}

// batchPlan is what reading the input decided.
type batchPlan struct {
	jobs       []job
	more       map[int32][]row  // job index -> rows of further names
	copyFrom   map[int32]string // job index -> a file in the directory already holding its code
	fails      []failure        // found locally
	rows       int              // rows read
	present    int              // names already holding their code
	unrecorded int              // complete images without a record of this run's origin and request: minted again
	duplicates int              // rows repeating an earlier row's request and name
}

// rowsOf calls each for the rows whose names need job i's code, in order.
func (p *batchPlan) rowsOf(i int32, each func(row)) {
	each(p.jobs[i].first)
	for _, rw := range p.more[i] {
		each(rw)
	}
}

// digest is a 128-bit hash standing for a string in the planner's sets: a
// few bytes a row whatever the string's length.
type digest [16]byte

func digestOf(parts ...string) digest {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var d digest
	copy(d[:], h.Sum(nil))
	return d
}

// planner turns rows into jobs as they are read: duplicate rows dropped,
// rows of one request grouped into one job, invalid scenes and unsafe or
// clashing file names failed locally, and names that already hold their
// code skipped (unless force). A complete image counts only if the
// manifest records it for the row's request from this run's origin (the
// API and account); one without such a record is minted again, and a name
// the manifest holds for another scene is a failure (unless force), never
// a replacement. On a case-insensitive directory,
// names that differ only in case clash. It holds a few hundred bytes a
// row.
type planner struct {
	flags           *codeFlags
	dir             string
	force, foldCase bool
	man             *manifest
	origin          short // the API and account of this run (see manifestFile)

	plan    batchPlan
	probe   imageProbe
	byKey   map[requestKey]int32 // request -> index in plan.jobs, or -1 - index in sources
	sources []string             // present images of requests that have no job yet
	names   map[digest]nameUse   // file name (folded on such a directory) -> the row that took it
	invalid map[digest]struct{}  // request and name of rows that break the API's rules
}

// nameUse is the row that took a file name: its line, its request, and a
// hash of the name as written (on a case-folding directory, the folded
// name alone would not tell a repeat from a clash).
type nameUse struct {
	line  int32
	exact uint32
	key   requestKey
}

func newPlanner(f *codeFlags, dir string, force, foldCase bool, man *manifest, origin short) *planner {
	return &planner{flags: f, dir: dir, force: force, foldCase: foldCase, man: man, origin: origin,
		plan:  batchPlan{more: map[int32][]row{}, copyFrom: map[int32]string{}},
		byKey: map[requestKey]int32{}, names: map[digest]nameUse{}, invalid: map[digest]struct{}{}}
}

// add plans one row.
func (pl *planner) add(rw row) {
	p := &pl.plan
	p.rows++
	fail := func(msg string) { p.fails = append(p.fails, failure{row: rw, errmsg: msg}) }
	if rw.long {
		fail("line is over " + strconv.Itoa(maxLine) + " bytes: not a scene")
		return
	}
	if rw.filename != "" {
		if _, err := checkFilename(rw.filename); err != nil {
			fail(err.Error())
			return
		}
	}
	base := rw.base()
	req := pl.flags.request(rw.scene, rw.page)
	key, _ := parseKey(req.Key())
	if err := req.Validate(); err != nil {
		// The same row again breaks the same rule: a duplicate.
		d := digestOf(string(key[:]), base)
		if _, dup := pl.invalid[d]; dup {
			p.duplicates++
			return
		}
		pl.invalid[d] = struct{}{}
		fail(strings.TrimPrefix(err.Error(), "wxacode: "))
		return
	}
	nameKey := base
	if pl.foldCase {
		nameKey = strings.ToLower(base)
	}
	nd, exact := digestOf(nameKey), crc32.ChecksumIEEE([]byte(base))
	if use, taken := pl.names[nd]; taken {
		if use.key == key && use.exact == exact {
			p.duplicates++ // the same request under the same name
			return
		}
		msg := fmt.Sprintf("file name %s is also the name for line %d", base, use.line)
		if pl.foldCase {
			msg += " (the output directory ignores case)"
		}
		fail(msg)
		return
	}
	pl.names[nd] = nameUse{line: rw.line, exact: exact, key: key}
	if !pl.force {
		if name := pl.probe.present(pl.dir, base); name != "" {
			rec, recorded := pl.man.lookup(name)
			switch {
			case recorded && rec.scene != shortOf(rw.scene):
				fail(fmt.Sprintf("file name %s already holds the code of another scene (by %s): give this row another filename, or run with -force to replace it", name, manifestFile))
				return
			case recorded && rec.key == key && rec.origin == pl.origin:
				p.present++
				if i, ok := pl.byKey[key]; !ok {
					pl.byKey[key] = -1 - int32(len(pl.sources))
					pl.sources = append(pl.sources, name)
				} else if i >= 0 {
					p.copyFrom[i] = name
				}
				return
			case !recorded:
				p.unrecorded++
			}
			// Minted for another request, flags, API or account, or
			// without a record: minted again.
		}
	}
	i, ok := pl.byKey[key]
	switch {
	case ok && i >= 0:
		p.more[i] = append(p.more[i], rw)
		return
	case ok: // a present image holds the code: copy it
		p.copyFrom[int32(len(p.jobs))] = pl.sources[-1-i]
	}
	pl.byKey[key] = int32(len(p.jobs))
	p.jobs = append(p.jobs, job{key: key, first: rw})
}

// finish returns the plan.
func (pl *planner) finish() batchPlan {
	p := pl.plan
	pl.byKey, pl.sources, pl.names, pl.invalid = nil, nil, nil, nil
	return p
}
