package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/anya-edge/anya/node/lightning/graph"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnwire"
	"golang.org/x/time/rate"
)

// Conn is what a session needs of a peer connection (peer.Conn implements it).
type Conn interface {
	Send(lnwire.Message) error
	Recv(ctx context.Context) (lnwire.Message, error)
	// Drop tells the peer why and disconnects it.
	Drop(reason error)
}

// Defaults of SessionConfig.
const (
	DefaultRate        = 2000 // gossip messages per second from one peer
	DefaultBurst       = 20_000
	DefaultBatchSize   = 512
	DefaultBatchDelay  = 20 * time.Millisecond
	DefaultStepTimeout = 2 * time.Minute
	// queryChunk is how many short channel ids one query_short_channel_ids asks for.
	queryChunk = 1000
	// maxRangeReplies bounds the reply_channel_range messages waiting for the sync: some
	// implementations answer one range query with a reply per few blocks.
	maxRangeReplies = 4096
)

// SessionConfig configures the gossip exchange with one peer.
type SessionConfig struct {
	Chain    chainhash.Hash
	Ingester *Ingester
	Graph    *graph.Graph
	// Since is the start of the gossip_timestamp_filter sent after the initial sync: the
	// peer then forwards live gossip newer than that (zero: now).
	Since time.Time
	// Rate and Burst limit the gossip messages accepted from the peer (a faster peer is
	// slowed down by back-pressure, not served before others).
	Rate  rate.Limit
	Burst int
	// BatchSize and BatchDelay bound how many messages, and how long, are collected before
	// they are validated and stored together.
	BatchSize  int
	BatchDelay time.Duration
	// StepTimeout bounds each step of the initial sync.
	StepTimeout time.Duration
	// OnSynced is called when the initial sync with the peer has completed.
	OnSynced func(SyncStats)
	Log      *slog.Logger
}

// SyncStats describes a completed initial sync.
type SyncStats struct {
	Offered   int // short channel ids the peer has
	Requested int // that the box asked for (unknown, or with newer updates)
	Duration  time.Duration
	At        time.Time
}

func (c *SessionConfig) defaults() {
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Burst == 0 {
		c.Burst = DefaultBurst
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchDelay == 0 {
		c.BatchDelay = DefaultBatchDelay
	}
	if c.StepTimeout == 0 {
		c.StepTimeout = DefaultStepTimeout
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// session is the state of one peer's exchange.
type session struct {
	cfg    SessionConfig
	conn   Conn
	ranges chan *lnwire.ReplyChannelRange
	ends   chan *lnwire.ReplyShortChanIDsEnd
}

// RunSession runs the gossip exchange with a connected peer until ctx ends or the
// connection does: the initial sync by gossip queries, then live gossip after a
// gossip_timestamp_filter. A peer that sends invalid gossip is dropped and the error wraps
// ErrInvalid.
func RunSession(ctx context.Context, conn Conn, cfg SessionConfig) error {
	cfg.defaults()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s := &session{cfg: cfg, conn: conn, ranges: make(chan *lnwire.ReplyChannelRange, maxRangeReplies), ends: make(chan *lnwire.ReplyShortChanIDsEnd, 1)}
	go func() {
		if err := s.sync(ctx); err != nil && ctx.Err() == nil {
			cancel(fmt.Errorf("gossip sync: %w", err))
		}
	}()
	err := s.receive(ctx)
	if cause := context.Cause(ctx); err == nil || (errors.Is(err, context.Canceled) && cause != nil) {
		err = cause
	}
	return err
}

// receive reads the peer's messages: gossip goes to the ingester in batches, replies to
// the sync, and the peer's own queries are answered.
func (s *session) receive(ctx context.Context) error {
	limiter := rate.NewLimiter(s.cfg.Rate, s.cfg.Burst)
	type recv struct {
		m   lnwire.Message
		err error
	}
	msgs := make(chan recv)
	go func() {
		for {
			m, err := s.conn.Recv(ctx)
			select {
			case msgs <- recv{m, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var batch []lnwire.Message
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		res, err := s.cfg.Ingester.Process(ctx, batch)
		batch = batch[:0]
		if err != nil {
			return err
		}
		if res.Invalid != nil {
			s.conn.Drop(res.Invalid)
			return fmt.Errorf("peer dropped: %w", res.Invalid)
		}
		return nil
	}
	for {
		var r recv
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			if err := flush(); err != nil {
				return err
			}
			continue
		case r = <-msgs:
		}
		if r.err != nil {
			return fmt.Errorf("receive: %w", r.err)
		}
		switch m := r.m.(type) {
		case *lnwire.ChannelAnnouncement1, *lnwire.ChannelUpdate1, *lnwire.NodeAnnouncement1:
			if err := limiter.Wait(ctx); err != nil {
				return err
			}
			if len(batch) == 0 {
				timer.Reset(s.cfg.BatchDelay)
			}
			batch = append(batch, m)
			if len(batch) >= s.cfg.BatchSize {
				if err := flush(); err != nil {
					return err
				}
			}
		case *lnwire.ReplyChannelRange:
			select {
			case s.ranges <- m:
			default:
				s.conn.Drop(errors.New("unsolicited reply_channel_range"))
				return fmt.Errorf("%w: unsolicited reply_channel_range", ErrInvalid)
			}
		case *lnwire.ReplyShortChanIDsEnd:
			// Everything the peer sent before the end marker is applied first.
			if err := flush(); err != nil {
				return err
			}
			select {
			case s.ends <- m:
			default:
				s.conn.Drop(errors.New("unsolicited reply_short_channel_ids_end"))
				return fmt.Errorf("%w: unsolicited reply_short_channel_ids_end", ErrInvalid)
			}
		case *lnwire.QueryChannelRange:
			// The box does not serve gossip: it answers that it has nothing in the range.
			if err := s.conn.Send(&lnwire.ReplyChannelRange{
				ChainHash: m.ChainHash, FirstBlockHeight: m.FirstBlockHeight, NumBlocks: m.NumBlocks,
				Complete: 1, EncodingType: lnwire.EncodingSortedPlain,
			}); err != nil {
				return err
			}
		case *lnwire.QueryShortChanIDs:
			if err := s.conn.Send(&lnwire.ReplyShortChanIDsEnd{ChainHash: m.ChainHash, Complete: 1}); err != nil {
				return err
			}
		}
		// Other messages (gossip_timestamp_filter, channel messages) need nothing from a
		// box without channels.
	}
}

// sync runs the initial sync: which channels the peer has, then the ones the box lacks or
// has older updates of, then the filter for live gossip.
func (s *session) sync(ctx context.Context) error {
	start := time.Now()
	q := &lnwire.QueryChannelRange{
		ChainHash: s.cfg.Chain, FirstBlockHeight: 0, NumBlocks: math.MaxUint32,
		QueryOptions: lnwire.NewTimestampQueryOption(),
	}
	if err := s.conn.Send(q); err != nil {
		return err
	}
	var want []lnwire.ShortChannelID
	offered := 0
	for done := false; !done; {
		r, err := wait(ctx, s.ranges, s.cfg.StepTimeout, "reply_channel_range")
		if err != nil {
			return err
		}
		if r.ChainHash != s.cfg.Chain {
			continue
		}
		if len(r.Timestamps) != 0 && len(r.Timestamps) != len(r.ShortChanIDs) {
			s.conn.Drop(errors.New("reply_channel_range timestamps do not match the ids"))
			return fmt.Errorf("%w: reply_channel_range timestamps do not match the ids", ErrInvalid)
		}
		offered += len(r.ShortChanIDs)
		for i, id := range r.ShortChanIDs {
			if s.needs(id, r.Timestamps, i) {
				want = append(want, id)
			}
		}
		done = r.LastBlockHeight() >= q.LastBlockHeight() || (r.Complete == 1 && r.NumBlocks == 0)
	}
	requested := len(want)
	for len(want) > 0 {
		n := min(queryChunk, len(want))
		if err := s.conn.Send(&lnwire.QueryShortChanIDs{ChainHash: s.cfg.Chain, EncodingType: lnwire.EncodingSortedPlain, ShortChanIDs: want[:n]}); err != nil {
			return err
		}
		if _, err := wait(ctx, s.ends, s.cfg.StepTimeout, "reply_short_channel_ids_end"); err != nil {
			return err
		}
		want = want[n:]
	}
	since := s.cfg.Since
	if since.IsZero() {
		since = time.Now()
	}
	if err := s.conn.Send(&lnwire.GossipTimestampRange{
		ChainHash: s.cfg.Chain, FirstTimestamp: uint32(since.Unix()), TimestampRange: math.MaxUint32,
	}); err != nil {
		return err
	}
	st := SyncStats{Offered: offered, Requested: requested, Duration: time.Since(start), At: time.Now()}
	s.cfg.Log.Info("lightning gossip synced", "offered", st.Offered, "took", st.Duration)
	if s.cfg.OnSynced != nil {
		s.cfg.OnSynced(st)
	}
	return nil
}

// needs reports whether the box should ask for channel id: unknown, or the peer has newer
// updates of a direction.
func (s *session) needs(id lnwire.ShortChannelID, ts lnwire.Timestamps, i int) bool {
	scid := id.ToUint64()
	if !s.cfg.Graph.HasChannel(scid) {
		return true
	}
	if len(ts) == 0 {
		return false
	}
	return ts[i].Timestamp1 > s.cfg.Graph.PolicyTimestamp(scid, 0) || ts[i].Timestamp2 > s.cfg.Graph.PolicyTimestamp(scid, 1)
}

func wait[T any](ctx context.Context, ch <-chan T, timeout time.Duration, what string) (T, error) {
	var zero T
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case v := <-ch:
		return v, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-t.C:
		return zero, fmt.Errorf("no %s within %v", what, timeout)
	}
}
