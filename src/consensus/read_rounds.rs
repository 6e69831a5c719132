//! Sharing one quorum round among the reads that wait for it, run by one
//! of those reads itself.
//!
//! A `?consistent` read needs a quorum round that started after it
//! arrived; reads that arrive while a round is in flight share the next
//! one. The read that finds no round in flight runs it in its own task,
//! and when a round ends the first read that waited for it runs the next
//! one, answering the others with its result. No separate task drives the
//! rounds: on a loaded machine each hand-over to another task is another
//! chance to wait for a CPU, and a lone reader (the common case) then
//! makes no hand-over at all.
//!
//! A read whose future is dropped while it runs a round (its client went
//! away) hands the round on to the reads attached to it and those waiting,
//! so nobody waits for a round that will never end.

use std::future::Future;
use std::sync::Mutex;
use tokio::sync::oneshot;

type Waiter<T> = oneshot::Sender<Turn<T>>;

/// What a waiting read is told.
enum Turn<T> {
    /// Run the next round and answer these reads with its result too.
    Run(Vec<Waiter<T>>),
    /// The round this read waited for ended with this.
    Done(T),
}

pub struct Rounds<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    /// A round is in flight (or being handed over).
    running: bool,
    /// Reads that arrived while it was: the next round is theirs.
    waiting: Vec<Waiter<T>>,
}

impl<T: Clone> Default for Rounds<T> {
    fn default() -> Self {
        Rounds { state: Mutex::new(State { running: false, waiting: Vec::new() }) }
    }
}

impl<T: Clone> Rounds<T> {
    /// The result of a round `round` started after this call: run here if
    /// none is in flight, else the next one (run by whichever waiting read
    /// is first).
    pub async fn join<F, Fut>(&self, round: F) -> T
    where
        F: Fn() -> Fut,
        Fut: Future<Output = T>,
    {
        let attached = loop {
            let rx = {
                let mut s = self.lock();
                if !s.running {
                    s.running = true;
                    break Vec::new();
                }
                let (tx, rx) = oneshot::channel();
                s.waiting.push(tx);
                rx
            };
            match rx.await {
                Ok(Turn::Done(result)) => return result,
                Ok(Turn::Run(attached)) => break attached,
                // Never sent: every waiter is answered or handed a turn.
                // Should it happen, waiting again is still correct.
                Err(_) => continue,
            }
        };
        let mut turn = RunningTurn { rounds: self, attached: Some(attached) };
        let result = round().await;
        for w in turn.attached.take().unwrap_or_default() {
            let _ = w.send(Turn::Done(result.clone()));
        }
        self.hand_over(Vec::new());
        result
    }

    /// Gives the next round to the first of `first` then the waiting reads
    /// that still listens, attaching the others to it; with nobody left,
    /// no round is in flight. Under the lock, so no read can queue behind
    /// a round that is no longer running.
    fn hand_over(&self, first: Vec<Waiter<T>>) {
        let mut s = self.lock();
        let mut next = first;
        next.append(&mut s.waiting);
        let mut queue = next.into_iter();
        while let Some(runner) = queue.next() {
            match runner.send(Turn::Run(queue.collect())) {
                Ok(()) => return,
                Err(Turn::Run(rest)) => queue = rest.into_iter(),
                // Only `Run` is sent here; were it otherwise, end the round
                // rather than leave it marked as running.
                Err(Turn::Done(_)) => break,
            }
        }
        s.running = false;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The turn of the read running a round; if its future is dropped before
/// the round ends, the reads attached to it get the turn.
struct RunningTurn<'a, T: Clone> {
    rounds: &'a Rounds<T>,
    attached: Option<Vec<Waiter<T>>>,
}

impl<T: Clone> Drop for RunningTurn<'_, T> {
    fn drop(&mut self) {
        if let Some(attached) = self.attached.take() {
            self.rounds.hand_over(attached);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::sync::Notify;

    /// A round that waits until released, counting how many ran.
    struct Gate {
        started: AtomicUsize,
        release: Notify,
    }

    impl Gate {
        fn new() -> Arc<Gate> {
            Arc::new(Gate { started: AtomicUsize::new(0), release: Notify::new() })
        }
        async fn round(&self) -> usize {
            let n = self.started.fetch_add(1, Ordering::SeqCst) + 1;
            self.release.notified().await;
            n
        }
    }

    async fn until(what: impl Fn() -> bool) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while !what() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("condition within 5 s");
    }

    /// A read joining the rounds in a task of its own.
    fn read(rounds: &Arc<Rounds<usize>>, gate: &Arc<Gate>) -> tokio::task::JoinHandle<usize> {
        let (rounds, gate) = (rounds.clone(), gate.clone());
        tokio::spawn(async move { rounds.join(|| gate.round()).await })
    }

    #[tokio::test]
    async fn a_lone_read_runs_its_own_round() {
        let rounds = Rounds::default();
        let n = AtomicUsize::new(0);
        let got = rounds.join(|| async { n.fetch_add(1, Ordering::SeqCst) + 1 }).await;
        assert_eq!(got, 1);
        let got = rounds.join(|| async { n.fetch_add(1, Ordering::SeqCst) + 1 }).await;
        assert_eq!(got, 2, "each read after the last round ended gets a new one");
    }

    #[tokio::test]
    async fn reads_arriving_during_a_round_share_the_next_one() {
        let rounds = Arc::new(Rounds::default());
        let gate = Gate::new();
        let first = read(&rounds, &gate);
        until(|| gate.started.load(Ordering::SeqCst) == 1).await;
        let later: Vec<_> = (0..5).map(|_| read(&rounds, &gate)).collect();
        until(|| rounds.lock().waiting.len() == 5).await;
        gate.release.notify_one();
        assert_eq!(first.await.unwrap(), 1);
        until(|| gate.started.load(Ordering::SeqCst) == 2).await;
        gate.release.notify_one();
        for r in later {
            assert_eq!(r.await.unwrap(), 2, "one round for all five, started after they arrived");
        }
        assert_eq!(gate.started.load(Ordering::SeqCst), 2);
        assert!(!rounds.lock().running);
    }

    #[tokio::test]
    async fn a_dropped_runner_hands_its_round_on() {
        let rounds = Arc::new(Rounds::default());
        let gate = Gate::new();
        let runner = read(&rounds, &gate);
        until(|| gate.started.load(Ordering::SeqCst) == 1).await;
        let waiter = read(&rounds, &gate);
        until(|| rounds.lock().waiting.len() == 1).await;
        runner.abort();
        assert!(runner.await.unwrap_err().is_cancelled());
        // The waiting read runs the next round itself.
        until(|| gate.started.load(Ordering::SeqCst) == 2).await;
        gate.release.notify_one();
        assert_eq!(waiter.await.unwrap(), 2);
        assert!(!rounds.lock().running);
    }

    #[tokio::test]
    async fn a_waiter_that_left_is_skipped() {
        let rounds = Arc::new(Rounds::default());
        let gate = Gate::new();
        let runner = read(&rounds, &gate);
        until(|| gate.started.load(Ordering::SeqCst) == 1).await;
        let gone = read(&rounds, &gate);
        until(|| rounds.lock().waiting.len() == 1).await;
        let stays = read(&rounds, &gate);
        until(|| rounds.lock().waiting.len() == 2).await;
        gone.abort();
        let _ = gone.await;
        gate.release.notify_one();
        assert_eq!(runner.await.unwrap(), 1);
        until(|| gate.started.load(Ordering::SeqCst) == 2).await;
        gate.release.notify_one();
        assert_eq!(stays.await.unwrap(), 2);
        assert!(!rounds.lock().running);
    }
}
