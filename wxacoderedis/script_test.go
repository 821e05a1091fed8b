package wxacoderedis

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// TestReserveLuaMemory: the script drops Limiters unseen for fleetMemory,
// which it holds as a literal (one argument fewer a call).
func TestReserveLuaMemory(t *testing.T) {
	want := "memory = KEYS[1], ARGV[3], " + strconv.FormatInt(fleetMemory.Microseconds(), 10) + "\n"
	if !strings.Contains(reserveLua, want) {
		t.Errorf("reserveLua does not set memory to fleetMemory (%v): want the line ending %q", fleetMemory, want)
	}
}

// TestScriptsReadTatInAnyNumberForm: Redis writes the Lua numbers the
// scripts store; Redis 7.2 and later may write a round one in exponent
// form. Both scripts read such a tat as the number it is: the give-back
// still recognises its own last turn, and a reservation goes on from it.
func TestScriptsReadTatInAnyNumberForm(t *testing.T) {
	srv := startRedis(t)
	rdb, _ := newRDB(t, srv.addr)
	ctx := context.Background()
	const key = "wxacode:forms:quota"
	tests := []struct {
		stored string
		want   int64
	}{
		// times far ahead of now (year 2099 and 2255), so that the
		// quota's tat, not Redis's clock, sets the next turn
		{"4.1e+15", 4_100_000_000_000_000},
		{"4100000000000000", 4_100_000_000_000_000},
		{"9e+15", 9_000_000_000_000_000},
	}
	for _, tt := range tests {
		// give back 2 turns of 1000 µs from tat
		if err := rdb.HSet(ctx, key, "tat", tt.stored).Err(); err != nil {
			t.Fatal(err)
		}
		got, err := rdb.Eval(ctx, giveBackLua, []string{key}, strconv.FormatInt(tt.want, 10), 2, 1000).Int()
		if err != nil || got != 1 {
			t.Errorf("give back from tat %q: %d, %v; want 1 (its own last turn)", tt.stored, got, err)
		}
		after, err := rdb.HGet(ctx, key, "tat").Float64()
		if err != nil || int64(after) != tt.want-2000 {
			t.Errorf("tat %q after giving back 2 turns: %v, %v; want %d", tt.stored, after, err, tt.want-2000)
		}

		// a reservation of one turn (interval 1000, no burst) after tat
		if err := rdb.HSet(ctx, key, "tat", tt.stored, "born", "1").Err(); err != nil {
			t.Fatal(err)
		}
		v, err := rdb.Eval(ctx, reserveLua, []string{key}, 1000, 0, "", 0, 0, 0, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		r, err := parseReservation(v)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.ats) != 1 || r.ats[0] != tt.want+1000 || r.tat != tt.want+1000 {
			t.Errorf("reservation after tat %q: turn %v, tat %d; want [%d], %d", tt.stored, r.ats, r.tat, tt.want+1000, tt.want+1000)
		}
	}
}
