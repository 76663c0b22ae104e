package rounds

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Every caller gets the result of a round that started after it called: a round's value is the count of
// rounds started before it ended, and a caller compares it with the count it saw when it called.
func TestGroup_RoundStartsAfterTheCall(t *testing.T) {
	var g Group[int64]
	var started atomic.Int64
	fn := func(context.Context) (int64, error) {
		n := started.Add(1)
		time.Sleep(time.Millisecond) // let callers pile up behind the running round
		return n, nil
	}
	var wg sync.WaitGroup
	var rounds atomic.Int64
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				before := started.Load()
				got, err := g.Do(context.Background(), fn)
				if err != nil {
					t.Error(err)
					return
				}
				if got <= before {
					t.Errorf("served by round %d, which started before the call (%d rounds had started)", got, before)
					return
				}
				rounds.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := started.Load(); n >= rounds.Load() {
		t.Fatalf("%d rounds for %d calls: rounds are not shared", n, rounds.Load())
	}
}

func TestGroup_ErrorsAndCancellation(t *testing.T) {
	var g Group[int]
	boom := errors.New("boom")
	var fail atomic.Bool
	fail.Store(true)
	release := make(chan struct{})
	var calls atomic.Int64
	fn := func(context.Context) (int, error) {
		if fail.Load() {
			return 0, boom
		}
		if calls.Add(1) == 1 {
			<-release // the first successful round blocks until released
		}
		return int(calls.Load()), nil
	}
	if _, err := g.Do(context.Background(), fn); !errors.Is(err, boom) {
		t.Fatalf("round error: %v", err)
	}
	fail.Store(false)
	first := make(chan error, 1)
	go func() { _, err := g.Do(context.Background(), fn); first <- err }()
	for deadline := time.Now().Add(10 * time.Second); calls.Load() == 0; { // the blocking round has started
		if time.Now().After(deadline) {
			t.Fatal("the blocking round never started")
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := g.Do(ctx, fn); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a caller whose context ends while it waits: %v", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if v, err := g.Do(context.Background(), fn); err != nil || v < 2 {
		t.Fatalf("after the blocking round: %d %v, want a later round", v, err)
	}
}

func TestGroup_RoundTimeout(t *testing.T) {
	g := Group[int]{Timeout: 10 * time.Millisecond}
	_, err := g.Do(context.Background(), func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("round past its timeout: %v", err)
	}
}

func TestGroup_ExpiredCaller(t *testing.T) {
	var g Group[int]
	var runs atomic.Int64
	fn := func(context.Context) (int, error) { runs.Add(1); return 7, nil }

	// A caller whose context has ended starts no round.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Do(ctx, fn); !errors.Is(err, context.Canceled) {
		t.Fatalf("Do with a cancelled context: %v, want context.Canceled", err)
	}
	// Nor does one whose deadline the clock has reached, even before the context's timer fires.
	past, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := g.Do(past, fn); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do past the deadline: %v, want context.DeadlineExceeded", err)
	}
	if n := runs.Load(); n != 0 {
		t.Fatalf("%d rounds ran for callers that had given up", n)
	}

	// A caller whose deadline passes while its round runs gets the deadline error, not the round's result,
	// however select would have chosen between the two.
	for range 20 {
		var g Group[int] // a round runs the fn of the caller that started it: one group per fn here
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		_, err := g.Do(ctx, func(context.Context) (int, error) {
			for dl, _ := ctx.Deadline(); !time.Now().After(dl); {
				runtime.Gosched()
			}
			return 7, nil
		})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("deadline passed during the round: %v, want context.DeadlineExceeded", err)
		}
	}
}
