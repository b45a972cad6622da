//! Words for what the program tells a person: counts with the noun in the right
//! number ("1 call", "2 calls").

/// `n` and `noun`, plural unless `n` is 1: `count(1, "call")` is "1 call",
/// `count(0, "call")` "0 calls". Only for nouns whose plural is noun + "s".
pub fn count(n: impl TryInto<i64>, noun: &str) -> String {
    let n = n.try_into().unwrap_or(i64::MAX);
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_takes_the_singular_and_every_other_count_the_plural() {
        assert_eq!(count(1, "call"), "1 call");
        assert_eq!(count(0, "call"), "0 calls");
        assert_eq!(count(2, "job file"), "2 job files");
        assert_eq!(count(1usize, "collection"), "1 collection");
        assert_eq!(count(-1, "call"), "-1 calls");
    }
}
