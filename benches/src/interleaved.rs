//! Measurements of several pools taken in turns, so a machine whose load changes during the
//! run (other builds, a noisy neighbour) slows every pool alike instead of whichever ran then.

/// Named measurement runs, each repeated round-robin with the others.
pub struct Interleaved<'a, T> {
    runs: Vec<(String, Box<dyn FnMut() -> T + 'a>)>,
}

impl<T> std::fmt::Debug for Interleaved<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.runs.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Interleaved").field("runs", &names).finish()
    }
}

impl<T> Default for Interleaved<'_, T> {
    fn default() -> Self {
        Interleaved { runs: Vec::new() }
    }
}

impl<'a, T> Interleaved<'a, T> {
    /// No runs yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a run named `name`; each call of `run` takes one measurement.
    pub fn add(&mut self, name: &str, run: impl FnMut() -> T + 'a) {
        self.runs.push((name.to_owned(), Box::new(run)));
    }

    /// Takes `rounds` measurements of every run, one of each per round, and returns them per
    /// run in the order the runs were added.
    pub fn run(mut self, rounds: usize) -> Vec<(String, Vec<T>)> {
        let mut taken: Vec<Vec<T>> = self
            .runs
            .iter()
            .map(|_| Vec::with_capacity(rounds))
            .collect();
        for _ in 0..rounds {
            for ((_, run), samples) in self.runs.iter_mut().zip(&mut taken) {
                samples.push(run());
            }
        }
        self.runs
            .into_iter()
            .map(|(name, _)| name)
            .zip(taken)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_turns_and_keeps_the_order_of_the_runs() {
        let order = std::cell::RefCell::new(Vec::new());
        let mut runs = Interleaved::new();
        runs.add("a", || {
            order.borrow_mut().push('a');
            1
        });
        runs.add("b", || {
            order.borrow_mut().push('b');
            2
        });
        let taken = runs.run(3);
        assert_eq!(*order.borrow(), vec!['a', 'b', 'a', 'b', 'a', 'b']);
        assert_eq!(
            taken,
            vec![
                ("a".to_owned(), vec![1, 1, 1]),
                ("b".to_owned(), vec![2, 2, 2])
            ]
        );
    }
}
