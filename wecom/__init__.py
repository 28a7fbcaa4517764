"""Everything that speaks WeCom: callback crypto, event parsing, the API client, the simulator."""
