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

/// The closest of `candidates` to a misspelled `given`, if one is close enough to be
/// what the user meant.
pub fn suggest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(given, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
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
