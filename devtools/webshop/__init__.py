"""A sample web shop that keeps its users' sessions in process memory, like a classic Java EE or PHP app.

If its process dies, every session it holds is gone: that is the property scale-in must respect, and
what the tests use to prove that no session was lost.
"""
