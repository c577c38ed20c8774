// Package route finds payment routes on the box's graph (package graph): single-path with
// Finder.Find and multi-path (MPP) with Finder.Split, from any node of the graph (the box's
// own node once it has channels) to a destination.
//
// A route honours every channel's policy: fees (base + proportional, charged by each
// forwarding node on what it forwards; the source pays none to itself), CLTV deltas and a
// total time-lock limit, htlc_minimum/maximum_msat, the capacity, and the disabled flag. The
// search is Dijkstra from the target back to the source, as lnd's, because the amount a node
// must receive depends on the fees of the hops after it.
//
// The cost of a hop is its fee, a small charge for the time funds are locked, and the price
// of a failed attempt times -ln(success probability), so that a cheap but unlikely route
// loses to a likelier one when the difference in fees is smaller than the expected cost of
// failing. The probabilities come from Model: the liquidity of a channel direction is taken
// as uniform between 0 and the capacity (a prior that needs no data), narrowed by what
// payments taught (a success proves at least its amount, a failure at most less than its
// amount), which fades with a half-life. MPP parts reserve the liquidity they use, so the
// parts together never exceed a channel's capacity.
//
// A Route is in lnd's terms (hops with amount to forward, fee and expiry; total amount,
// fees and time lock), and Route.HopKeys is what `lncli buildroute --hops` takes; lnd then
// builds the same route and `lncli sendtoroute` pays it. Standard library only.
package route
