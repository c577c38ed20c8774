package lightning

import (
	"errors"
	"fmt"
	"strings"

	"github.com/anya-edge/anya/node/lightning/graph"
	"github.com/anya-edge/anya/node/lightning/route"
)

// RouteQuery is a route question as the page and the API ask it.
type RouteQuery struct {
	// Source and Target are node ids in hex. The box has no channels yet, so the source is
	// any node of the graph.
	Source, Target string
	AmountSat      uint64
	// MPP splits the payment into parts when one route is not enough or not likely enough.
	MPP bool
	// CurrentHeight is the chain height the time locks count from (0 when unknown).
	CurrentHeight uint32
}

// RouteAnswer is a computed route (or MPP split).
type RouteAnswer struct {
	Parts       []route.Route `json:"parts"`
	AmountMsat  uint64        `json:"amount_msat"`
	FeesMsat    uint64        `json:"fees_msat"`
	Probability float64       `json:"probability"`
	// BuildRoute are the lncli commands that turn each part into an lnd route on the source
	// node (then paid with lncli sendtoroute).
	BuildRoute []string `json:"buildroute"`
}

// ErrBadQuery marks a query the caller got wrong (as opposed to no route existing).
var ErrBadQuery = errors.New("bad route query")

// QueryRoute answers q on the node's graph. Errors wrap ErrBadQuery or route.ErrNoRoute.
func (n *Node) QueryRoute(q RouteQuery) (RouteAnswer, error) {
	src, err := graph.ParseNodeID(strings.TrimSpace(q.Source))
	if err != nil {
		return RouteAnswer{}, fmt.Errorf("%w: source: %v", ErrBadQuery, err)
	}
	dst, err := graph.ParseNodeID(strings.TrimSpace(q.Target))
	if err != nil {
		return RouteAnswer{}, fmt.Errorf("%w: target: %v", ErrBadQuery, err)
	}
	if q.AmountSat == 0 || q.AmountSat > 21e6*1e8 {
		return RouteAnswer{}, fmt.Errorf("%w: amount %d sat", ErrBadQuery, q.AmountSat)
	}
	if src == dst {
		return RouteAnswer{}, fmt.Errorf("%w: source and target are the same node", ErrBadQuery)
	}
	req := route.Request{Source: src, Target: dst, Amount: q.AmountSat * 1000, CurrentHeight: q.CurrentHeight}
	var a RouteAnswer
	if q.MPP {
		p, err := n.finder.Split(req, route.SplitOptions{Granularity: 1000})
		if err != nil {
			return RouteAnswer{}, err
		}
		a = RouteAnswer{Parts: p.Parts, AmountMsat: p.Amount, FeesMsat: p.TotalFees, Probability: p.Probability}
	} else {
		r, err := n.finder.Find(req)
		if err != nil {
			return RouteAnswer{}, err
		}
		a = RouteAnswer{Parts: []route.Route{r}, AmountMsat: req.Amount, FeesMsat: r.TotalFees, Probability: r.Probability}
	}
	for _, p := range a.Parts {
		amt := p.Hops[len(p.Hops)-1].AmtToForward / 1000
		a.BuildRoute = append(a.BuildRoute, fmt.Sprintf("lncli buildroute --amt=%d --final_cltv_delta=%d --hops=%s",
			amt, route.DefaultFinalCLTVDelta, strings.Join(p.HopKeys(), ",")))
	}
	return a, nil
}
