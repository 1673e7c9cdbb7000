//! Cheap shape statistics of a text (digit clusters, upper-case tokens, base64
//! runs, escapes) that gate the rules without keywords and the base64 pass.
//!
//! A text of at most 64 bytes is classified sixteen bytes at a time into one
//! bit mask per byte class, and its runs are read off the masks; longer texts
//! are walked byte by byte. Both give the same [`Shape`] (a property test holds
//! them to it).

/// Cheap shape statistics of a text, computed in one pass, that gate the rules
/// without keywords.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Most digits in one cluster of digits and separators (space - . ( ) +).
    pub digit_cluster: usize,
    /// Most groups of digits (runs split by separators) in one such cluster:
    /// `415-555-2671` has three, a hex id's digit run one.
    pub digit_groups: usize,
    /// Longest run of `[A-Z0-9-]` holding at least three letters (so an ISO
    /// timestamp's `2024-01-15T10` does not count).
    pub upper_token: usize,
    /// Longest run of base64 characters holding both upper- and lower-case letters.
    pub base64_run: usize,
    /// The text holds `%`, `\\` or `+`: decoding may change it.
    pub escapes: bool,
}

// Byte classes for [`Shape::scalar`].
const DIGIT: u8 = 1;
const UPPER: u8 = 2;
const LOWER: u8 = 4;
/// Base64 characters other than letters and digits: `+ / - _`.
const B64: u8 = 8;
/// Ends an upper-case token but not a digit cluster: space `. ( ) +`.
const SEP: u8 = 16;
const DASH: u8 = 32;
/// `% \\ +`: the text may need decoding.
const ESC: u8 = 64;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if b.is_ascii_digit() {
            DIGIT
        } else if b.is_ascii_uppercase() {
            UPPER
        } else if b.is_ascii_lowercase() {
            LOWER
        } else {
            match b {
                b'+' => B64 | SEP | ESC,
                b'/' | b'_' => B64,
                b'-' => B64 | DASH,
                b' ' | b'.' | b'(' | b')' => SEP,
                b'%' | b'\\' => ESC,
                _ => 0,
            }
        };
        i += 1;
    }
    t
};

impl Shape {
    /// The shape of `text`: from byte-class masks when it is at most 64 bytes
    /// (most field values), else byte by byte.
    pub fn of(text: &str) -> Shape {
        match masks::of(text.as_bytes()) {
            Some(m) => m.shape(),
            None => Shape::scalar(text.as_bytes()),
        }
    }

    /// The shape computed one byte at a time (texts longer than a mask, targets
    /// without SSE2, and the reference the mask path is tested against).
    fn scalar(text: &[u8]) -> Shape {
        let mut s = Shape::default();
        let (mut cluster, mut token, mut letters) = (0usize, 0usize, 0usize);
        // Groups in the current cluster, and whether the last byte was a digit.
        let (mut groups, mut in_digits) = (0usize, false);
        let (mut b64, mut upper, mut lower) = (0usize, false, false);
        let mut esc = 0u8;
        for &b in text {
            let c = CLASS[usize::from(b)];
            esc |= c;
            if c & (DIGIT | UPPER | LOWER | B64) != 0 {
                b64 += 1;
                upper |= c & UPPER != 0;
                lower |= c & LOWER != 0;
                if upper && lower {
                    s.base64_run = s.base64_run.max(b64);
                }
            } else {
                (b64, upper, lower) = (0, false, false);
            }
            if c & DIGIT != 0 {
                cluster += 1;
                token += 1;
                s.digit_cluster = s.digit_cluster.max(cluster);
                groups += usize::from(!in_digits);
                s.digit_groups = s.digit_groups.max(groups);
            } else if c & UPPER != 0 {
                (cluster, groups) = (0, 0);
                token += 1;
                letters += 1;
            } else if c & DASH != 0 {
                token += 1;
            } else if c & SEP != 0 {
                (token, letters) = (0, 0);
            } else {
                (cluster, groups, token, letters) = (0, 0, 0, 0);
            }
            in_digits = c & DIGIT != 0;
            if letters >= 3 {
                s.upper_token = s.upper_token.max(token);
            }
        }
        s.escapes = esc & ESC != 0;
        s
    }

    /// The shape of two texts joined by a character that ends every run.
    pub fn max(self, o: Shape) -> Shape {
        Shape {
            digit_cluster: self.digit_cluster.max(o.digit_cluster),
            digit_groups: self.digit_groups.max(o.digit_groups),
            upper_token: self.upper_token.max(o.upper_token),
            base64_run: self.base64_run.max(o.base64_run),
            escapes: self.escapes || o.escapes,
        }
    }
}

/// Byte-class bit masks of a short text (bit `i` for byte `i`). Built with
/// SSE2 only; elsewhere every text takes [`Shape::scalar`].
#[cfg_attr(
    not(all(target_arch = "x86_64", target_feature = "sse2")),
    allow(dead_code)
)]
mod masks {
    use super::Shape;

    /// The longest text that fits one set of masks.
    pub(super) const MAX: usize = 64;

    /// One mask per byte class of [`Shape::scalar`].
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub(super) struct Masks {
        pub digit: u64,
        pub upper: u64,
        pub lower: u64,
        /// `+ / - _`.
        pub b64: u64,
        /// Space `. ( ) +`.
        pub sep: u64,
        pub dash: u64,
        /// `% \\ +`.
        pub esc: u64,
    }

    /// The masks of `text`, or `None` when it is longer than [`MAX`] bytes (or
    /// the target has no SSE2).
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    pub(super) fn of(text: &[u8]) -> Option<Masks> {
        let mut buf = [0u8; MAX];
        buf.get_mut(..text.len())?.copy_from_slice(text);
        // SAFETY: the function only needs SSE2, which this build enables (the
        // cfg above); it touches no memory but the array it is given.
        Some(unsafe { sse2(&buf, text.len().div_ceil(16)) })
    }

    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    pub(super) fn of(_text: &[u8]) -> Option<Masks> {
        None
    }

    /// Classify the first `chunks` sixteen-byte chunks of `buf` (zero bytes
    /// beyond the text belong to no class).
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[target_feature(enable = "sse2")]
    fn sse2(buf: &[u8; MAX], chunks: usize) -> Masks {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_movemask_epi8, _mm_or_si128,
            _mm_set_epi64x, _mm_set1_epi8, _mm_sub_epi8, _mm_xor_si128,
        };
        // Unsigned `lo <= b < lo + n`, as a signed compare with the sign bit flipped.
        let range = |v: __m128i, lo: u8, n: u8| {
            let off = _mm_xor_si128(
                _mm_sub_epi8(v, _mm_set1_epi8(lo as i8)),
                _mm_set1_epi8(-128),
            );
            _mm_cmplt_epi8(off, _mm_set1_epi8((n ^ 0x80) as i8))
        };
        let eq = |v: __m128i, b: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8));
        let bits = |v: __m128i| u64::from(_mm_movemask_epi8(v) as u16);
        let mut m = Masks::default();
        for (k, chunk) in buf.chunks_exact(16).take(chunks).enumerate() {
            let word = |i: usize| crate::text::le_word(&chunk[i..]) as i64;
            let v = _mm_set_epi64x(word(8), word(0));
            let shift = 16 * k;
            let plus = eq(v, b'+');
            let dash = eq(v, b'-');
            m.digit |= bits(range(v, b'0', 10)) << shift;
            m.upper |= bits(range(v, b'A', 26)) << shift;
            m.lower |= bits(range(v, b'a', 26)) << shift;
            m.dash |= bits(dash) << shift;
            let slash_under = _mm_or_si128(eq(v, b'/'), eq(v, b'_'));
            m.b64 |= bits(_mm_or_si128(_mm_or_si128(plus, dash), slash_under)) << shift;
            let space_dot = _mm_or_si128(eq(v, b' '), eq(v, b'.'));
            let parens = _mm_or_si128(eq(v, b'('), eq(v, b')'));
            m.sep |= bits(_mm_or_si128(_mm_or_si128(space_dot, parens), plus)) << shift;
            let pct_bs = _mm_or_si128(eq(v, b'%'), eq(v, b'\\'));
            m.esc |= bits(_mm_or_si128(pct_bs, plus)) << shift;
        }
        m
    }

    /// Bits below `n` (all of them for 64).
    fn below(n: u32) -> u64 {
        1u64.checked_shl(n).map_or(u64::MAX, |b| b - 1)
    }

    /// The run of set bits of `m` that holds bit `i` (set): its mask and length.
    #[inline(always)]
    fn run_at(m: u64, i: u32) -> (u64, u32) {
        let end = i + (!(m >> i)).trailing_zeros();
        let gaps = !m & below(i);
        let start = 64 - gaps.leading_zeros();
        (below(end) & !below(start), end - start)
    }

    /// Visit each run of set bits of `runs` that holds a bit of `seeds`, with
    /// its mask and length.
    #[inline(always)]
    fn each_run(runs: u64, mut seeds: u64, mut f: impl FnMut(u64, u32)) {
        while seeds != 0 {
            let (run, len) = run_at(runs, seeds.trailing_zeros());
            f(run, len);
            seeds &= !run;
        }
    }

    #[cfg(test)]
    pub(super) fn three_or_more_for_test(m: u64) -> bool {
        three_or_more(m)
    }

    /// Whether `m` has at least three bits set (without a population count).
    #[inline(always)]
    fn three_or_more(m: u64) -> bool {
        let m = m & m.wrapping_sub(1);
        m & m.wrapping_sub(1) != 0
    }

    impl Masks {
        /// The [`Shape`] these masks describe (what [`Shape::scalar`] computes).
        pub(super) fn shape(&self) -> Shape {
            // Counting digits takes a population count: one instruction where
            // the processor has it (x86-64 before v2 need not), a dozen without.
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("popcnt") {
                // SAFETY: the processor has POPCNT, checked just above.
                return unsafe { self.shape_popcnt() };
            }
            self.shape_any()
        }

        /// [`Masks::shape`] compiled to use POPCNT.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "popcnt")]
        fn shape_popcnt(&self) -> Shape {
            self.shape_any()
        }

        #[inline(always)]
        fn shape_any(&self) -> Shape {
            let mut s = Shape {
                escapes: self.esc != 0,
                ..Shape::default()
            };
            // A digit cluster is a run of digits and separators; its groups are
            // the digits that follow a non-digit.
            let starts = self.digit & !(self.digit << 1);
            each_run(self.digit | self.sep | self.dash, self.digit, |run, _| {
                s.digit_cluster = s
                    .digit_cluster
                    .max((self.digit & run).count_ones() as usize);
                s.digit_groups = s.digit_groups.max((starts & run).count_ones() as usize);
            });
            // A token is a run of `[A-Z0-9-]`; it counts with three letters.
            if three_or_more(self.upper) {
                each_run(
                    self.digit | self.upper | self.dash,
                    self.upper,
                    |run, len| {
                        if three_or_more(self.upper & run) {
                            s.upper_token = s.upper_token.max(len as usize);
                        }
                    },
                );
            }
            // A base64 run counts with both cases in it.
            if self.upper != 0 && self.lower != 0 {
                let b64 = self.digit | self.upper | self.lower | self.b64;
                each_run(b64, self.upper, |run, len| {
                    if self.lower & run != 0 {
                        s.base64_run = s.base64_run.max(len as usize);
                    }
                });
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let s = Shape::of("ts=2024-01-15T10:22:31Z ua=Mozilla/5.0 (X11)");
        assert_eq!(s.digit_cluster, 8);
        let s = Shape::of("call (415) 555-2671 or 1EG4-TE5-MK73");
        assert_eq!(s.digit_cluster, 10);
        assert_eq!(s.upper_token, 13);
        assert_eq!(Shape::of("4111 1111 1111 1111").digit_cluster, 16);
        assert_eq!(Shape::of("4111 1111 1111 1111").digit_groups, 4);
        assert_eq!(Shape::of("ssn 123-45-6789;").digit_groups, 3);
        assert_eq!(Shape::of("(415)555-2671").digit_groups, 3);
        let hex = Shape::of("x-request-id: 4b1f0123456789ab9876543210cd");
        assert_eq!((hex.digit_cluster, hex.digit_groups), (10, 1));
        assert_eq!(Shape::of("ts=2024-01-15T10:22:31Z").upper_token, 0);
        assert_eq!(Shape::of("x c3NuPTEyMy00NS02Nzg5 y").base64_run, 20);
        assert_eq!(Shape::of("0af7651916cd43dd8448eb211c80319c").base64_run, 0);
        assert!(Shape::of("a%40b").escapes && Shape::of("a+b").escapes);
        assert!(!Shape::of("a-b_c/d").escapes);
    }

    #[test]
    fn runs_reach_both_ends_of_a_mask() {
        // A 64-byte run: the end of the mask ends it.
        let digits = "1".repeat(64);
        assert!(masks::of(digits.as_bytes()).is_some() || cfg!(not(target_arch = "x86_64")));
        assert_eq!(Shape::of(&digits).digit_cluster, 64);
        assert_eq!(Shape::of(&digits).digit_groups, 1);
        let token = format!("ABC{}", "9".repeat(61));
        assert_eq!(Shape::of(&token).upper_token, 64);
        let b64 = format!("Ab{}", "c".repeat(62));
        assert_eq!(Shape::of(&b64).base64_run, 64);
        // One byte more takes the byte-by-byte path, with the same answer.
        assert_eq!(Shape::of(&"1".repeat(65)).digit_cluster, 65);
    }

    #[test]
    fn three_bits_without_a_population_count() {
        for m in [
            0u64,
            1,
            2,
            3,
            0b101,
            1 << 63,
            3 << 62,
            7,
            0b1011,
            u64::MAX,
            1 | 1 << 40 | 1 << 63,
        ] {
            assert_eq!(
                masks::three_or_more_for_test(m),
                m.count_ones() >= 3,
                "{m:b}"
            );
        }
    }

    proptest::proptest! {
        /// The mask path gives exactly the byte-by-byte shape: texts mixing
        /// every byte class (and multi-byte characters), up to and past 64 bytes.
        #[test]
        fn masks_equal_scalar(text in "[0-9A-Za-z+/_. ()%\\\\=&:;é€-]{0,70}") {
            proptest::prop_assert_eq!(Shape::of(&text), Shape::scalar(text.as_bytes()));
        }

        /// The same for arbitrary strings.
        #[test]
        fn masks_equal_scalar_any(text in ".{0,66}") {
            proptest::prop_assert_eq!(Shape::of(&text), Shape::scalar(text.as_bytes()));
        }
    }
}
