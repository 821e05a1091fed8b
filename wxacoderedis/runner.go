package wxacoderedis

import "time"

// workerIdle is how long a command's goroutine waits for the next command
// before it ends.
const workerIdle = 5 * time.Second

// runner runs functions in goroutines that outlive them. A command that
// must be bounded in time runs in a goroutine of its own (see bounded),
// and a new goroutine's stack is grown, copied each time it doubles,
// until it holds go-redis's call path: measured, about a sixth of the
// client's CPU per command. A goroutine that waits for the next command
// keeps its stack. A function that hangs (a frozen Redis) holds its
// goroutine alone: the next one gets another, so no command waits for
// another. Goroutines idle for r.idle end, so a runner that is no
// longer used leaves nothing running.
type runner struct {
	jobs chan func() // unbuffered: a send succeeds only if a goroutine is idle
	idle time.Duration
}

func newRunner(idle time.Duration) *runner { return &runner{jobs: make(chan func()), idle: idle} }

// run runs job in an idle goroutine, or in a new one if none is idle. It
// does not wait for job.
func (r *runner) run(job func()) {
	select {
	case r.jobs <- job:
	default:
		go r.work(job)
	}
}

// work runs job, then the jobs it is handed, until none comes for r.idle.
func (r *runner) work(job func()) {
	idle := time.NewTimer(r.idle)
	defer idle.Stop()
	for {
		job()
		job = nil // let job's captures go while idle
		idle.Reset(r.idle)
		select {
		case job = <-r.jobs:
		case <-idle.C:
			return
		}
	}
}
