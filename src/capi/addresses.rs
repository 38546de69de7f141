//! The machines' addresses: one range per student out of the lab's, never overlapping, and
//! one control plane endpoint each, outside all of them.

use std::net::Ipv4Addr;

/// An inclusive range of IPv4 addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// First address.
    pub first: Ipv4Addr,
    /// Last address.
    pub last: Ipv4Addr,
}

impl Range {
    /// How many addresses it has.
    pub fn len(&self) -> u64 {
        u64::from(u32::from(self.last)) - u64::from(u32::from(self.first)) + 1
    }

    /// Never: a range has at least one address.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `ip` is in it.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(self.first)..=u32::from(self.last)).contains(&u32::from(ip))
    }

    /// Whether it shares an address with `other`.
    pub fn overlaps(&self, other: &Range) -> bool {
        u32::from(self.first) <= u32::from(other.last) && u32::from(other.first) <= u32::from(self.last)
    }
}

impl std::fmt::Display for Range {
    /// `10.10.0.10-10.10.0.13`, as CAPMOX's `ipv4Config.addresses` takes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// `10.10.0.0/25` (its usable hosts: without the network and broadcast addresses) or
/// `10.10.0.10-10.10.0.199`, with the CIDR's prefix length.
pub fn parse(text: &str) -> Result<(Range, Option<u8>), String> {
    let bad = || format!("`{text}` is not a CIDR (10.10.0.0/25) or a range (10.10.0.10-10.10.0.199)");
    if let Some((ip, len)) = text.split_once('/') {
        let ip: Ipv4Addr = ip.trim().parse().map_err(|_| bad())?;
        let len: u8 = len.trim().parse().ok().filter(|l| *l <= 32).ok_or_else(bad)?;
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let network = u32::from(ip) & mask;
        if network != u32::from(ip) {
            return Err(format!("`{text}` has host bits set: the network is {}/{len}", Ipv4Addr::from(network)));
        }
        let broadcast = network | !mask;
        let (first, last) = if len >= 31 { (network, broadcast) } else { (network + 1, broadcast - 1) };
        return Ok((Range { first: first.into(), last: last.into() }, Some(len)));
    }
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let first: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
    let last: Ipv4Addr = b.trim().parse().map_err(|_| bad())?;
    if u32::from(first) > u32::from(last) {
        return Err(format!("`{text}`: the range ends before it starts"));
    }
    Ok((Range { first, last }, None))
}

/// Whether `a` and `b` are in the same subnet of prefix length `prefix`.
pub fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, prefix: u8) -> bool {
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix.min(32)) };
    u32::from(a) & mask == u32::from(b) & mask
}

/// `students` ranges of `block` addresses each, in order, out of `pool`, passing over the
/// addresses in `skip` (the gateway); an error says how many students the pool holds.
pub fn split(pool: Range, block: u32, students: usize, skip: &[Ipv4Addr]) -> Result<Vec<Range>, String> {
    let mut out = Vec::with_capacity(students);
    let mut next = u64::from(u32::from(pool.first));
    let end = u64::from(u32::from(pool.last));
    while out.len() < students {
        let last = next + u64::from(block) - 1;
        if last > end {
            let fits = out.len();
            return Err(format!(
                "{pool} holds {fits} of the class's {students} students at {block} addresses each (control planes and workers, and one more of each for rollouts): give a larger range, or fewer machines"
            ));
        }
        let range = Range { first: Ipv4Addr::from(next as u32), last: Ipv4Addr::from(last as u32) };
        match skip.iter().find(|s| range.contains(**s)) {
            Some(s) => next = u64::from(u32::from(*s)) + 1,
            None => {
                out.push(range);
                next = last + 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_and_ranges_parse_to_their_usable_hosts() {
        let (r, p) = parse("10.10.0.0/24").unwrap();
        assert_eq!((r.to_string(), p, r.len()), ("10.10.0.1-10.10.0.254".into(), Some(24), 254));
        assert_eq!(parse("10.10.0.10 - 10.10.0.13").unwrap().0.len(), 4);
        assert!(parse("10.10.0.5/24").unwrap_err().contains("host bits"));
        assert!(parse("10.10.0.13-10.10.0.10").unwrap_err().contains("ends before"));
        assert!(parse("lan").is_err());
        assert!(
            same_subnet(ip("10.10.0.1"), ip("10.10.0.250"), 24) && !same_subnet(ip("10.10.0.1"), ip("10.10.1.1"), 24)
        );
    }

    /// For every pool size and block size of a small space: 30 students' ranges are in the
    /// pool, of the block's size, pairwise disjoint, never on a skipped address; or the
    /// error says the pool is too small, and it is.
    #[test]
    fn ranges_of_a_class_never_overlap_nor_cover_the_gateway() {
        for size in [1u32, 7, 30, 120, 150, 200, 254] {
            for block in 1..=8u32 {
                let pool =
                    Range { first: ip("10.20.0.1"), last: Ipv4Addr::from(u32::from(ip("10.20.0.1")) + size - 1) };
                for gateway in [ip("10.20.0.1"), ip("10.20.0.50"), ip("10.30.0.1")] {
                    match split(pool, block, 30, &[gateway]) {
                        Ok(ranges) => {
                            assert_eq!(ranges.len(), 30);
                            for (i, a) in ranges.iter().enumerate() {
                                assert!(pool.contains(a.first) && pool.contains(a.last));
                                assert_eq!(a.len(), u64::from(block));
                                assert!(!a.contains(gateway));
                                for b in &ranges[i + 1..] {
                                    assert!(!a.overlaps(b), "{a} and {b}");
                                }
                            }
                        }
                        Err(e) => {
                            // Passing over the gateway loses at most one block.
                            assert!(u64::from(size) < 31 * u64::from(block), "{size}/{block}: {e}");
                            assert!(e.contains("of the class's 30 students"));
                        }
                    }
                }
            }
        }
    }
}
