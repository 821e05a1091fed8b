module github.com/go-wxacode/wxacode

go 1.25
