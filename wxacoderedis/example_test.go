package wxacoderedis_test

import (
	"context"
	"fmt"
	"time"

	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/wxacoderedis"
	"github.com/go-wxacode/wxacode/wxacodetest"
	"github.com/redis/go-redis/v9"
)

// Every replica of a service builds its Client the same way: its own
// StableTokenSource, and the quota and codes in Redis. Here Redis is not
// running at all, and the calls go on: the limiter paces this process
// alone, and the cache is a miss.
func Example() {
	api := wxacodetest.NewServer() // stands in for api.weixin.qq.com
	defer api.Close()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // nothing listens there
	defer rdb.Close()

	appID := api.AppID()
	ts := wxacode.NewStableTokenSource(appID, api.AppSecret(), wxacode.WithBaseURL(api.URL))
	client := wxacode.NewClient(ts, wxacode.WithBaseURL(api.URL),
		wxacode.WithLimiter(wxacoderedis.NewLimiter(rdb, appID, 4500, time.Minute)),
		wxacode.WithCache(wxacoderedis.NewCache(rdb, appID)))

	img, err := client.GetUnlimited(context.Background(), wxacode.Request{Scene: "id=42"})
	if err != nil {
		fmt.Println(err)
		return
	}
	scene, _ := wxacodetest.ReadScene(img)
	fmt.Println("minted a code for", scene)
	// Output: minted a code for id=42
}
