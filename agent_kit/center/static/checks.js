/* The check catalogue for the dashboard: id -> title, unit, group; and the charts.
 * Generated from agent_kit/core/checks.py by `python3 scripts/update-generated.py`. */
"use strict";
window.CHECKS = Object.freeze({
  "system.cpu": {title: "CPU load", unit: "%", group: "system"},
  "system.memory": {title: "Memory available", unit: "MB", group: "system"},
  "system.disk": {title: "Disk free", unit: "GB", group: "system"},
  "system.power": {title: "Battery charge (on battery)", unit: "%", group: "system"},
  "system.uptime": {title: "Time since restart", unit: "days", group: "system"},
  "network.link": {title: "Connection type", unit: null, group: "network"},
  "vpn.connected": {title: "VPN tunnel", unit: null, group: "vpn"},
  "vpn.route": {title: "Center reached through the VPN", unit: null, group: "vpn"},
  "network.rtt": {title: "Round-trip time to the center", unit: "ms", group: "network"},
  "network.jitter": {title: "Jitter (RFC 3550)", unit: "ms", group: "network"},
  "network.loss": {title: "Packet loss", unit: "%", group: "network"},
  "network.mos": {title: "Estimated call quality (MOS)", unit: "MOS", group: "network"},
  "network.hops": {title: "Where on the path problems start", unit: null, group: "network"},
  "bandwidth.down": {title: "Download speed", unit: "Mbit/s", group: "bandwidth"},
  "bandwidth.up": {title: "Upload speed", unit: "Mbit/s", group: "bandwidth"},
  "bandwidth.bufferbloat": {title: "Latency under load", unit: "ms", group: "bandwidth"},
  "audio.headset": {title: "Headset", unit: null, group: "audio"},
  "audio.noise": {title: "Background noise", unit: "dBFS(A)", group: "audio"},
  "audio.speech_level": {title: "Speech level", unit: "dBFS", group: "audio"},
  "audio.snr": {title: "Speech-to-noise ratio", unit: "dB", group: "audio"},
  "audio.clipping": {title: "Clipping", unit: "%", group: "audio"},
  "audio.dropouts": {title: "Dropouts", unit: "count", group: "audio"},
  "audio.hum": {title: "Mains hum (50/60 Hz)", unit: "dBFS", group: "audio"},
  "audio.echo": {title: "Echo return loss", unit: "dB", group: "audio"},
});
/* The agent page's charts: each line is a check that names the chart. */
window.CHARTS = Object.freeze([
  {figure: "chart-rtt", title: "Round-trip time", unit: "ms", zeroBased: true,
   series: [{name: "RTT", key: "network.rtt"}]},
  {figure: "chart-jitter", title: "Jitter", unit: "ms", zeroBased: true,
   series: [{name: "Jitter", key: "network.jitter"}]},
  {figure: "chart-loss", title: "Packet loss", unit: "%", zeroBased: true,
   series: [{name: "Loss", key: "network.loss"}]},
  {figure: "chart-mos", title: "Call quality (MOS)", unit: "MOS", zeroBased: false,
   series: [{name: "MOS", key: "network.mos"}]},
  {figure: "chart-noise", title: "Background noise", unit: "dBFS(A)", zeroBased: false,
   series: [{name: "Noise", key: "audio.noise"}]},
  {figure: "chart-bandwidth", title: "Bandwidth", unit: "Mbit/s", zeroBased: true,
   series: [{name: "Down", key: "bandwidth.down"}, {name: "Up", key: "bandwidth.up"}]},
]);
