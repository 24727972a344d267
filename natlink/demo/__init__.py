"""`natlink demo`: the whole chain on a throwaway home network built by natlink.lab.

Imported only by natlink/commands/demo.py inside run(), so normal commands never load the lab.
"""
