//! Words for what the program tells a person: counts with the noun in the right
//! number ("1 call", "2 calls").

/// `n` and `noun`, plural unless `n` is 1: `count(1, "call")` is "1 call",
/// `count(0, "call")` "0 calls". For nouns whose plural is not noun + "s", see
/// [`count_as`].
pub fn count(n: impl Into<i64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `n` and `one` or `many`, as `n` asks: `count_as(2, "entry", "entries")`.
pub fn count_as(n: impl Into<i64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_takes_the_singular_and_every_other_count_the_plural() {
        assert_eq!(count(1, "call"), "1 call");
        assert_eq!(count(0, "call"), "0 calls");
        assert_eq!(count(2, "job file"), "2 job files");
        assert_eq!(count(-1, "call"), "-1 calls");
        assert_eq!(count_as(1u32, "entry", "entries"), "1 entry");
        assert_eq!(count_as(3u32, "entry", "entries"), "3 entries");
    }
}
