"""ITU-T G.107 E-model, simplified: R factor and MOS from delay, loss and codec. Pure math.

R = 93.2 - Idd - Ie_eff (default values for every other G.107 parameter), with

- Idd (delay impairment, G.107 7.2.3) = 0 for Ta <= 100 ms, else with X = log2(Ta/100):
  Idd = 25 * ((1 + X^6)^(1/6) - 3 * (1 + (X/3)^6)^(1/6) + 2);
- Ie_eff (equipment impairment with packet loss, G.107 7.2.4)
  = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl), Ppl in percent;
- MOS (G.107 Annex B) = 1 for R < 0, 4.5 for R > 100, else 1 + 0.035 R + R (R - 60)(100 - R) 7e-6,
  clamped to [1, 4.5]: the polynomial dips below 1 for 0 < R < 6.5.

Ta, the one-way mouth-to-ear delay (ITU-T G.114: 0-150 ms one way, mouth to ear, is good), is
estimated as half the RTT, plus a jitter buffer of twice the jitter (a common adaptive-buffer
size), plus the codec's packetisation and look-ahead delay. Ppl and BurstR are those of the
direction the listener hears (the listener's one-way loss, not the round trip: round-trip loss
roughly doubles Ie_eff for symmetric loss). Codec values (Ie, Bpl) are those of ITU-T G.113
Appendix I where it lists the codec.

Opus is a wideband codec, which the wideband E-model (ITU-T G.107.1, R up to 129) rates with
its own Ie,wb and Bpl. No published Ie,wb/Bpl values for Opus could be found to cite, so Opus
is estimated as narrowband (the G.711-with-concealment values on the G.107 scale) and says so
(``Codec.estimated_as_narrowband``); the MOS is then that of a narrowband call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

R_DEFAULT = 93.2   # G.107 R with every parameter at its default value
JITTER_BUFFER_FACTOR = 2.0


@dataclass(frozen=True)
class Codec:
    name: str
    ie: float            # equipment impairment factor
    bpl: float           # packet-loss robustness factor
    packet_ms: float     # audio per packet (packetisation delay)
    lookahead_ms: float  # algorithmic look-ahead
    source: str
    estimated_as_narrowband: bool = False   # a wideband codec rated on the narrowband scale


CODECS: dict[str, Codec] = {
    "G.711": Codec("G.711", 0.0, 25.1, 20.0, 0.0,
                   "G.113 Appendix I: G.711 with packet-loss concealment, Bpl 25.1"),
    "G.711-noplc": Codec("G.711-noplc", 0.0, 4.3, 20.0, 0.0,
                         "G.113 Appendix I: G.711 without concealment, Bpl 4.3"),
    "G.729": Codec("G.729", 11.0, 19.0, 20.0, 5.0,
                   "G.113 Appendix I: G.729A + VAD, Ie 11, Bpl 19.0; 5 ms look-ahead"),
    "Opus": Codec("Opus", 0.0, 25.1, 20.0, 6.5,
                  "estimated as narrowband: no citable G.107.1 Ie,wb/Bpl for Opus; rated as "
                  "G.711 with concealment on the G.107 scale (Opus conceals losses at least "
                  "as well), 6.5 ms look-ahead (RFC 6716)", estimated_as_narrowband=True),
}


@dataclass(frozen=True)
class EModelResult:
    ta_ms: float
    idd: float
    ie_eff: float
    r: float
    mos: float
    codec: str


def delay_impairment(ta_ms: float) -> float:
    """Idd of G.107 for a one-way mouth-to-ear delay ``ta_ms``."""
    if ta_ms <= 100.0:
        return 0.0
    x = math.log2(ta_ms / 100.0)
    return 25.0 * ((1 + x**6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)


def effective_equipment_impairment(ie: float, bpl: float, loss_pct: float,
                                   burst_r: float = 1.0) -> float:
    """Ie_eff of G.107 for ``loss_pct`` percent packet loss (BurstR 1: random loss)."""
    if loss_pct < 0 or burst_r <= 0:
        raise ValueError("loss_pct must be >= 0 and burst_r > 0")
    if loss_pct == 0:
        return ie
    return ie + (95.0 - ie) * loss_pct / (loss_pct / burst_r + bpl)


def mos_from_r(r: float) -> float:
    """G.107 Annex B: the estimated mean opinion score for rating ``r``, in [1, 4.5]."""
    if r < 0:
        return 1.0
    if r > 100:
        return 4.5
    # the polynomial dips below 1 for 0 < R < 6.5 (0.989 at R = 3): clamp to the MOS scale
    return min(4.5, max(1.0, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6))


def r_factor(ta_ms: float, loss_pct: float, codec: Codec, burst_r: float = 1.0) -> float:
    """R = 93.2 - Idd - Ie_eff."""
    return R_DEFAULT - delay_impairment(ta_ms) - effective_equipment_impairment(
        codec.ie, codec.bpl, loss_pct, burst_r)


def mouth_to_ear_ms(rtt_ms: float, jitter_ms: float, codec: Codec) -> float:
    """Ta estimate: network one way (RTT/2) + jitter buffer (2 x jitter) + packetisation."""
    return rtt_ms / 2 + JITTER_BUFFER_FACTOR * jitter_ms + codec.packet_ms + codec.lookahead_ms


def estimate(rtt_ms: float, jitter_ms: float, loss_pct: float, codec_name: str = "G.711",
             burst_r: float = 1.0) -> EModelResult:
    """R and MOS of a call over a path with this RTT, jitter and loss, using ``codec_name``."""
    codec = CODECS.get(codec_name)
    if codec is None:
        raise ValueError(f"unknown codec {codec_name!r} (known: {', '.join(CODECS)})")
    ta = mouth_to_ear_ms(rtt_ms, jitter_ms, codec)
    idd = delay_impairment(ta)
    ie_eff = effective_equipment_impairment(codec.ie, codec.bpl, loss_pct, burst_r)
    r = R_DEFAULT - idd - ie_eff
    return EModelResult(ta_ms=ta, idd=idd, ie_eff=ie_eff, r=r, mos=mos_from_r(r),
                        codec=codec.name)
