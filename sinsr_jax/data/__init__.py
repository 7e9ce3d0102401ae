"""The input pipeline: TFDS splits -> random HR patches -> degraded LR/HR pairs (grain), and
the degradations (MATLAB bicubic, blur, noise) shared by training, evaluation and upscaling.
"""
