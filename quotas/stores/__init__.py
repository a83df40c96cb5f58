"""Where the limit counters live: ``shared`` (Redis: Lua scripts in ``scripts``, calls of one
event-loop turn in one pipeline by ``autopipeline``, bounded by ``deadline``) and ``local``
(in process, without Redis), both answering ``base.LimitStore`` alike."""
