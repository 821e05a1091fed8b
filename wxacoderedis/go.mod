module github.com/go-wxacode/wxacode/wxacoderedis

go 1.26.0

require (
	github.com/go-wxacode/wxacode v0.1.0
	github.com/redis/go-redis/v9 v9.23.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)

// Development only: a replace applies in this module alone, never in a
// module that requires wxacoderedis, which gets the version required above.
replace github.com/go-wxacode/wxacode => ../
