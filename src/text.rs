//! Splitting on one ASCII byte. `str::split(char)` searches with a general
//! character searcher whose set-up costs more than the search itself on the
//! short pieces of a log record (path segments, query pairs, fields); these
//! scan bytes directly. Splitting at an ASCII byte always lands on a character
//! boundary.

/// Split helpers on one ASCII separator byte.
pub(crate) trait SplitByte {
    /// Like `str::split(sep)`.
    fn split_b(&self, sep: u8) -> SplitB<'_>;
    /// Like `str::split_once(sep)`.
    fn split_once_b(&self, sep: u8) -> Option<(&str, &str)>;
    /// Like `str::rsplit_once(sep)`.
    fn rsplit_once_b(&self, sep: u8) -> Option<(&str, &str)>;
}

impl SplitByte for str {
    fn split_b(&self, sep: u8) -> SplitB<'_> {
        debug_assert!(sep.is_ascii());
        SplitB {
            rest: Some(self),
            sep,
        }
    }

    fn split_once_b(&self, sep: u8) -> Option<(&str, &str)> {
        debug_assert!(sep.is_ascii());
        let i = self.bytes().position(|b| b == sep)?;
        Some((&self[..i], &self[i + 1..]))
    }

    fn rsplit_once_b(&self, sep: u8) -> Option<(&str, &str)> {
        debug_assert!(sep.is_ascii());
        let i = self.bytes().rposition(|b| b == sep)?;
        Some((&self[..i], &self[i + 1..]))
    }
}

/// Iterator of [`SplitByte::split_b`].
#[derive(Debug, Clone)]
pub(crate) struct SplitB<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Iterator for SplitB<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        match s.bytes().position(|b| b == self.sep) {
            Some(i) => {
                self.rest = Some(&s[i + 1..]);
                Some(&s[..i])
            }
            None => {
                self.rest = None;
                Some(s)
            }
        }
    }
}

/// Byte offset of the first `needle` in `hay`, like `str::find` with a `&str`
/// pattern, for the short needles of the hot paths: a `memchr` for the first
/// byte and a compare, without building a two-way searcher on every call.
pub(crate) fn find_str(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let Some((&first, rest)) = n.split_first() else {
        return Some(0);
    };
    // A match starts with the needle's first (leading) byte: a char boundary.
    memchr::memchr_iter(first, h).find(|&i| h[i + 1..].starts_with(rest))
}

/// `0x01` in every byte: times a byte value, that byte in every lane.
pub(crate) const LANES: u64 = 0x0101_0101_0101_0101;

/// The first eight bytes of `b` (which holds at least eight) as a
/// little-endian word.
#[inline]
pub(crate) fn le_word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// The high bit of each zero byte of `v`: exact for the lowest one (a borrow
/// only disturbs the bytes above a zero byte), which is all a search needs.
#[inline]
pub(crate) fn zero_bytes(v: u64) -> u64 {
    bytes_below(v, 1)
}

/// The high bit of each byte of `v` below `k` (at most 0x80), exact for the
/// lowest one like [`zero_bytes`].
#[inline]
pub(crate) fn bytes_below(v: u64, k: u8) -> u64 {
    v.wrapping_sub(LANES * u64::from(k)) & !v & (LANES << 7)
}

/// Offset of the first `b` in `hay`, like `memchr`, for the short fields of
/// text log lines: the first sixteen bytes a word at a time (no call, no
/// dispatch), then `memchr` for the rest.
#[inline]
pub(crate) fn find_byte(hay: &[u8], b: u8) -> Option<usize> {
    let pattern = LANES * u64::from(b);
    for (k, word) in hay.chunks_exact(8).take(2).enumerate() {
        let zero = zero_bytes(le_word(word) ^ pattern);
        if zero != 0 {
            return Some(8 * k + (zero.trailing_zeros() / 8) as usize);
        }
    }
    let from = (hay.len() / 8).min(2) * 8;
    memchr::memchr(b, &hay[from..]).map(|i| from + i)
}

/// What follows the first `://` of `s` (all of `s` when it has none): a URL or
/// address without its scheme.
pub(crate) fn after_scheme(s: &str) -> &str {
    find_str(s, "://").map_or(s, |i| &s[i + 3..])
}

/// A fast, unkeyed 64-bit hash of bytes (FxHash-style: eight bytes at a time).
/// For direct-mapped caches only, where a collision costs a miss and nothing
/// else: never for maps an input could flood.
pub(crate) fn quick_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let n = bytes.len();
    let mut h = n as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h = (h.rotate_left(5) ^ le_word(c)).wrapping_mul(K);
    }
    if !chunks.remainder().is_empty() {
        // The last eight bytes when there are that many: overlapping bytes
        // already mixed in.
        h = (h.rotate_left(5) ^ tail_word(bytes)).wrapping_mul(K);
    }
    // Callers index with the low bits, and a product's low bits depend only
    // on its factors' low bits: fold the high half (which depends on every
    // byte) down and multiply again, so that texts differing only in their
    // last bytes (`page=31`, `page=32`) land in different slots.
    let h = (h ^ (h >> 32)).wrapping_mul(K);
    h ^ (h >> 29)
}

/// The tail of `bytes` as one word, read without a variable-length copy (a
/// call each): the last eight bytes when there are that many, else two
/// overlapping halves, else the first, middle and last of one to three bytes.
/// Together with the whole eight-byte chunks it covers every byte.
#[inline]
fn tail_word(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    if n >= 8 {
        le_word(&bytes[n - 8..])
    } else if n >= 4 {
        let half = |b: &[u8]| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        half(&bytes[..4]) | half(&bytes[n - 4..]) << 32
    } else if n > 0 {
        u64::from(bytes[0]) | u64::from(bytes[n / 2]) << 8 | u64::from(bytes[n - 1]) << 16
    } else {
        0
    }
}

/// Whether `a` and `b` hold the same bytes: a word at a time and inline, for
/// the short names and values compared on every record. `==` on slices calls
/// `memcmp`, whose dispatch on the length mispredicts when lengths vary.
#[inline]
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = tail_word(a) ^ tail_word(b);
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        diff |= le_word(x) ^ le_word(y);
    }
    diff == 0
}

/// Lower-case hex of `bytes` (the hex crate's table encoder; its `encode`
/// builds the string a character at a time).
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    // The buffer is exactly twice the input, and hex digits are ASCII.
    let _ = hex::encode_to_slice(bytes, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// The text of a record that is valid UTF-8. Records are mostly ASCII: a
/// branch-free OR over whole words (which the compiler turns into vector
/// instructions) settles those in a fraction of a full validation; any other
/// record takes [`std::str::from_utf8`].
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    const HIGH: u64 = LANES * 0x80;
    let mut chunks = bytes.chunks_exact(32);
    let mut seen = 0u64;
    for c in &mut chunks {
        seen |= le_word(c) | le_word(&c[8..]) | le_word(&c[16..]) | le_word(&c[24..]);
    }
    let ascii = seen & HIGH == 0 && chunks.remainder().is_ascii();
    if ascii {
        // SAFETY: every byte is below 0x80, and ASCII text is valid UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Same answer as `str::find`, on texts and needles drawn from a small
        /// alphabet (so partial matches and repeats are common), multi-byte
        /// characters and the empty needle included.
        #[test]
        fn find_str_is_str_find(hay in "[:/\\] \"aé]{0,30}", needle in "[:/\\] \"aé]{0,4}") {
            prop_assert_eq!(find_str(&hay, &needle), hay.find(needle.as_str()));
        }

        /// Same answer as `memchr`, the byte anywhere in the first words, the
        /// rest, or nowhere.
        #[test]
        fn find_byte_is_memchr(hay in proptest::collection::vec(proptest::sample::select(vec![b' ', b'a', 0x80, 0xff, 0]), 0..40), b in proptest::sample::select(vec![b' ', b'a', 0x80, 0xff, 0])) {
            prop_assert_eq!(find_byte(&hay, b), memchr::memchr(b, &hay));
        }

        /// Same answer as `std::str::from_utf8` (text and error position) on
        /// ASCII with one byte anywhere set to a high byte (in the whole words
        /// or the tail), valid multi-byte text and arbitrary bytes.
        #[test]
        fn utf8_is_from_utf8(
            ascii in proptest::collection::vec(0u8..0x80, 0..100),
            at in any::<proptest::sample::Index>(),
            high in 0x80u8..=0xff,
            text in "\\PC{0,40}",
            noise in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let mut one_high = ascii.clone();
            if !one_high.is_empty() {
                let i = at.index(one_high.len());
                one_high[i] = high;
            }
            for b in [&ascii[..], &one_high[..], text.as_bytes(), &noise[..]] {
                let ours = utf8(b).map_err(|e| e.valid_up_to());
                let std = std::str::from_utf8(b).map_err(|e| e.valid_up_to());
                prop_assert_eq!(ours, std);
            }
        }

        /// The lowest byte `bytes_below` marks is the first byte below `k`.
        #[test]
        fn bytes_below_finds_the_first_small_byte(word in any::<[u8; 8]>(), k in 1u8..=0x80) {
            let found = bytes_below(u64::from_le_bytes(word), k);
            let first = (found != 0).then(|| (found.trailing_zeros() / 8) as usize);
            prop_assert_eq!(first, word.iter().position(|&b| b < k));
        }

        /// Texts that differ in one byte hash apart (the tail included), so a
        /// cache keyed on the hash keeps telling them apart.
        #[test]
        fn one_byte_changes_the_hash(text in proptest::collection::vec(any::<u8>(), 1..40), at in any::<proptest::sample::Index>(), flip in 1u8..) {
            let mut other = text.clone();
            let i = at.index(text.len());
            other[i] ^= flip;
            prop_assert_ne!(quick_hash(&text), quick_hash(&other));
        }

        /// Texts that differ only in their last byte or two spread over the
        /// slots of a small direct-mapped cache rather than sharing one.
        #[test]
        fn texts_differing_at_the_end_spread_over_slots(prefix in "[a-z_]{0,12}=", slots in proptest::sample::select(vec![64usize, 256, 1024])) {
            let mut used = std::collections::HashSet::new();
            for i in 0..32 {
                used.insert(quick_hash(format!("{prefix}{i}").as_bytes()) as usize % slots);
            }
            // 32 texts in 64 slots or more: a fair hash fills about 25 (never
            // fewer than 16 in 200,000 random trials); the old finalizer
            // put every such text in one slot.
            prop_assert!(used.len() >= 12, "{} slots used", used.len());
        }

        /// `same` is slice equality: on equal texts, texts that differ in one
        /// byte anywhere (the tail words included), and unrelated texts.
        #[test]
        fn same_is_slice_equality(text in proptest::collection::vec(any::<u8>(), 0..40), at in any::<proptest::sample::Index>(), flip in any::<u8>(), other in proptest::collection::vec(any::<u8>(), 0..40)) {
            prop_assert!(same(&text, &text.clone()));
            prop_assert_eq!(same(&text, &other), text == other);
            if !text.is_empty() {
                let mut changed = text.clone();
                changed[at.index(text.len())] ^= flip;
                prop_assert_eq!(same(&text, &changed), flip == 0);
            }
        }

        #[test]
        fn hex_matches_the_library(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(hex(&bytes), hex::encode(&bytes));
        }

        #[test]
        fn same_as_std(s in "[a/=&. é]{0,24}", sep in proptest::sample::select(vec![b'/', b'=', b'&', b'.', b' '])) {
            let c = char::from(sep);
            prop_assert_eq!(s.split_b(sep).collect::<Vec<_>>(), s.split(c).collect::<Vec<_>>());
            prop_assert_eq!(s.split_once_b(sep), s.split_once(c));
            prop_assert_eq!(s.rsplit_once_b(sep), s.rsplit_once(c));
        }
    }
}
