"""Access: who besides an asset's owner may reach it, and the one rule that decides.

Groups of users, shares of an asset (to a user, a group or an email address), projects that
collect assets into folders for their members, and the reader keys every one of them reduces to
(``domain``); the store that keeps them (``ports.AccessStore``, on the system of record).
"""
