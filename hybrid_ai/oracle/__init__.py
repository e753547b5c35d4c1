"""The LLM oracle as the strategy sees it: one package for its strategy side.

* ``feed``: the oracle's journal (file or HTTP), merged point-in-time onto candles
  (``OracleFeed.merge``: ``oracle_*`` columns and ``gate_oracle``) and asked at a moment
  (``OracleFeed.at`` → ``Guidance``);
* ``entry``: the hard limits its decision tightens for new entries, and the entries it
  refuses (focus, open-trade slots per risk level);
* ``steering``: trims of the trades already open (a de-risking decision, the overnight mark),
  planned on plain numbers and carried out by two position rules;
* ``announce``: each decision followed and each trim, told through freqtrade's messaging.

The daemon that writes the journal is ``llm_oracle/``; this package only reads its contract
(``llm_oracle.schema``, ``llm_oracle.store``).
"""
