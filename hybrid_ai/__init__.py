"""Importable logic of the hybrid-AI pack; the freqtrade hook files stay thin."""
