"""The commands' plumbing: the `tinylora` command line (`cli`), its options (`options`), results
folders that resume (`records`) and progress bars (`progress`).

Nothing here is maths: the library a student reads is `tinylora/` itself, which never imports
this package.
"""
