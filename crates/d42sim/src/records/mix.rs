//! A tiny deterministic random source, so that a record depends only on the seed and its id.

/// The splitmix64 output function: scrambles all bits of `z`.
fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A tiny deterministic random source (splitmix64), so that records depend only on the seed and
/// the id, not on generation order or on a library's choice of algorithm.
pub(crate) struct Mix(u64);

impl Mix {
    /// The stream for one device and one purpose (`salt`).
    pub fn new(seed: u64, id: i64, salt: u64) -> Mix {
        let stream = finalize((id as u64) ^ salt.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        Mix(finalize(seed ^ stream))
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        finalize(self.0)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// One element of `items`, which must not be empty.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// `n` characters from `[0-9A-Z]`.
    pub fn alnum(&mut self, n: usize) -> String {
        const CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        (0..n).map(|_| self.pick(CHARS) as char).collect()
    }

    /// A random lowercase UUID-shaped string.
    pub fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    /// A random MAC address, `aa:bb:cc:dd:ee:ff`.
    pub fn mac(&mut self) -> String {
        let b = self.next().to_le_bytes();
        format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}
