//! Where port-mapping requests go: the gateway of the IPv4 default route,
//! read from Linux's routing table (`/proc/net/route`).

use std::net::Ipv4Addr;

/// The gateway of the default route in `/proc/net/route`, if the machine
/// has one (none elsewhere than on Linux).
pub(crate) fn default_gateway() -> Option<Ipv4Addr> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    parse_default_gateway(&table)
}

/// The gateway of the default route (destination and mask 0, flag
/// `RTF_GATEWAY`) with the lowest metric in a `/proc/net/route` text.
/// Lines that do not parse are skipped.
pub(crate) fn parse_default_gateway(table: &str) -> Option<Ipv4Addr> {
    const RTF_UP: u32 = 0x1;
    const RTF_GATEWAY: u32 = 0x2;
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let hex = |s: &str| u32::from_str_radix(s, 16).ok();
            let (dest, gateway, flags, mask) = (hex(f[1])?, hex(f[2])?, hex(f[3])?, hex(f[7])?);
            let metric: u32 = f[6].parse().ok()?;
            let default =
                dest == 0 && mask == 0 && flags & (RTF_UP | RTF_GATEWAY) == RTF_UP | RTF_GATEWAY;
            // The kernel prints the address as the u32 it stores, in host
            // byte order.
            (default && gateway != 0).then(|| (metric, Ipv4Addr::from(gateway.to_ne_bytes())))
        })
        .min_by_key(|(metric, _)| *metric)
        .map(|(_, gw)| gw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(ip: Ipv4Addr) -> String {
        format!("{:08X}", u32::from_ne_bytes(ip.octets()))
    }

    #[test]
    fn the_default_route_with_the_lowest_metric_names_the_gateway() {
        let table = format!(
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
             eth0\t{}\t00000000\t0001\t0\t0\t0\t{}\t0\t0\t0\n\
             wlan0\t00000000\t{}\t0003\t0\t0\t600\t00000000\t0\t0\t0\n\
             eth0\t00000000\t{}\t0003\t0\t0\t100\t00000000\t0\t0\t0\n",
            hex(Ipv4Addr::new(192, 168, 1, 0)),
            hex(Ipv4Addr::new(255, 255, 255, 0)),
            hex(Ipv4Addr::new(10, 0, 0, 1)),
            hex(Ipv4Addr::new(192, 168, 1, 1)),
        );
        assert_eq!(
            parse_default_gateway(&table),
            Some(Ipv4Addr::new(192, 168, 1, 1))
        );
    }

    #[test]
    fn no_default_route_or_a_garbled_table_names_none() {
        assert_eq!(parse_default_gateway(""), None);
        assert_eq!(
            parse_default_gateway("header\neth0 zz yy\n\u{0}\u{fffd}\n"),
            None
        );
        let on_link_only = "h\neth0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(parse_default_gateway(on_link_only), None);
    }
}
