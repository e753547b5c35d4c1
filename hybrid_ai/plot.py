"""What FreqUI and ``freqtrade plot-dataframe`` show of the pack: the strategy's
``plot_config`` (Bollinger bands, SMAs, RSI, MACD, the ML columns, the oracle and the gates)."""

from __future__ import annotations

PLOT_CONFIG: dict = {
    "main_plot": {
        "bb_upperband": {"color": "rgba(100,149,237,0.6)"},
        "bb_middleband": {"color": "cornflowerblue"},
        "bb_lowerband": {"color": "rgba(100,149,237,0.6)",
                         "fill_to": "bb_upperband", "fill_color": "rgba(100,149,237,0.08)"},
        "sma20": {"color": "orange"},
        "sma50": {"color": "purple"},
        "sma50_1h": {"color": "black"},
    },
    "subplots": {
        "RSI": {"rsi": {"color": "red"}, "rsi_1h": {"color": "darkred"}},
        "MACD": {
            "macd": {"color": "blue"},
            "macdsignal": {"color": "orange"},
            "macdhist": {"type": "bar", "color": "grey"},
        },
        # Each panel mixes lines and bars so 0/1 series never hide one another.
        "ML": {
            "ml_buy_prob": {"color": "teal"},
            "ml_confidence": {"color": "darkcyan"},
            "ml_target_position": {"type": "bar", "color": "rgba(128,128,0,0.5)"},
        },
        "ML edge": {
            "ml_expected_return": {"color": "darkgreen"},
            "ml_exit": {"type": "bar", "color": "rgba(178,34,34,0.5)"},
        },
        "ML status": {
            "ml_predicted": {"type": "bar", "color": "rgba(128,128,128,0.4)"},
            "ml_skill": {"color": "purple"},
            "do_predict": {"color": "black"},
        },
        "Oracle": {
            "oracle_risk_level": {"color": "crimson"},
            "oracle_max_exposure": {"color": "slateblue"},
            "oracle_focus": {"type": "bar", "color": "rgba(255,215,0,0.5)"},
            "oracle_exit": {"type": "bar", "color": "rgba(0,0,0,0.6)"},
        },
        "Layer gates": {"gate_ml": {"color": "teal"},
                        "gate_oracle": {"type": "bar", "color": "rgba(255,215,0,0.5)"}},
        "Entry gate": {"gate_approved": {"type": "bar", "color": "green"}},
    },
}
