<?php
/**
 * Media library UI: the review box in attachment details, the "Alt text" column, approve and
 * regenerate actions, and the backfill screen (Media > Alt text backfill).
 *
 * @package Alttext
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Every action checks a nonce and the capability to edit the attachment (or manage_options for the
 * backfill); every value printed is escaped.
 */
class Alttext_Admin {

	const BACKFILL_PAGE = 'alttext-backfill';

	/**
	 * Hooks.
	 */
	public static function init() {
		add_filter( 'attachment_fields_to_edit', array( __CLASS__, 'fields_to_edit' ), 10, 2 );
		add_filter( 'manage_media_columns', array( __CLASS__, 'columns' ) );
		add_action( 'manage_media_custom_column', array( __CLASS__, 'column' ), 10, 2 );
		add_action( 'admin_post_alttext_approve', array( __CLASS__, 'handle_approve' ) );
		add_action( 'admin_post_alttext_regenerate', array( __CLASS__, 'handle_regenerate' ) );
		add_action( 'admin_post_alttext_backfill', array( __CLASS__, 'handle_backfill' ) );
		add_action( 'admin_menu', array( __CLASS__, 'menu' ) );
		add_action( 'admin_head', array( __CLASS__, 'styles' ) );
	}

	/**
	 * The review state of one attachment, as HTML (escaped).
	 *
	 * @param int  $id      Attachment.
	 * @param bool $actions Include the approve, edit and regenerate links.
	 * @return string
	 */
	public static function status_html( $id, $actions = true ) {
		$alt      = (string) get_post_meta( $id, Alttext_Attachments::ALT_KEY, true );
		$ai       = (bool) get_post_meta( $id, '_alttext_ai_generated', true );
		$review   = (bool) get_post_meta( $id, '_alttext_needs_review', true );
		$checked  = get_post_meta( $id, '_alttext_checked', true );
		$proposal = (string) get_post_meta( $id, '_alttext_proposal', true );
		$warnings = (array) get_post_meta( $id, '_alttext_warnings', true );
		$error    = get_post_meta( $id, '_alttext_error', true );
		$pending  = (int) get_post_meta( $id, '_alttext_pending', true );
		$html     = '<div class="alttext-status">';
		if ( '' !== $alt ) {
			$html .= '<p class="alttext-alt">' . esc_html( $alt ) . '</p>';
		}
		$badges = array();
		if ( $ai ) {
			$badges[] = '<span class="alttext-badge alttext-ai">' . esc_html__( 'AI-generated', 'alttext' ) . '</span>';
		} elseif ( '' !== $alt ) {
			$badges[] = '<span class="alttext-badge">' . esc_html__( 'Human', 'alttext' ) . '</span>';
		}
		if ( $checked && $review ) {
			$badges[] = '<span class="alttext-badge alttext-review">' . esc_html__( 'Needs review', 'alttext' ) . '</span>';
		} elseif ( $checked && get_post_meta( $id, '_alttext_approved_by', true ) ) {
			$badges[] = '<span class="alttext-badge alttext-ok">' . esc_html__( 'Approved', 'alttext' ) . '</span>';
		} elseif ( $checked && $ai ) {
			$badges[] = '<span class="alttext-badge alttext-ok">' . esc_html__( 'No review needed', 'alttext' ) . '</span>';
		}
		if ( $pending ) {
			$badges[] = '<span class="alttext-badge alttext-review">' . esc_html__( 'Retry queued', 'alttext' ) . '</span>';
		}
		$html .= $badges ? '<p>' . implode( ' ', $badges ) . '</p>' : '';
		if ( $checked ) {
			/* translators: %s: confidence between 0 and 1. */
			$html .= '<p>' . esc_html( sprintf( __( 'Confidence: %s', 'alttext' ), number_format_i18n( (float) get_post_meta( $id, '_alttext_confidence', true ), 2 ) ) );
			if ( array_filter( $warnings ) ) {
				/* translators: %s: comma-separated warning codes. */
				$html .= '<br />' . esc_html( sprintf( __( 'Warnings: %s', 'alttext' ), implode( ', ', $warnings ) ) );
			}
			$html .= '</p>';
		}
		if ( '' !== $proposal ) {
			$html .= '<p><strong>' . esc_html__( 'Proposed alt text:', 'alttext' ) . '</strong> ' . esc_html( $proposal ) . '</p>';
		}
		if ( is_array( $error ) && ! empty( $error['message'] ) ) {
			$html .= '<p class="alttext-error">' . esc_html( $error['message'] ) . '</p>';
		}
		if ( $actions && current_user_can( 'edit_post', $id ) ) {
			$links = array();
			if ( $checked && ( $review || '' !== $proposal ) ) {
				$label   = '' !== $proposal && '' === trim( $alt ) ? __( 'Approve proposal', 'alttext' ) : __( 'Approve', 'alttext' );
				$links[] = '<a href="' . esc_url( self::action_url( 'alttext_approve', $id ) ) . '">' . esc_html( $label ) . '</a>';
			}
			$links[] = '<a href="' . esc_url( get_edit_post_link( $id ) . '#attachment_alt' ) . '">' . esc_html__( 'Edit alt text', 'alttext' ) . '</a>';
			$links[] = '<a href="' . esc_url( self::action_url( 'alttext_regenerate', $id ) ) . '">' . esc_html__( 'Regenerate', 'alttext' ) . '</a>';
			$html   .= '<p class="alttext-actions">' . implode( ' | ', $links ) . '</p>';
		}
		return $html . '</div>';
	}

	/**
	 * A nonce-protected admin-post.php link for one attachment.
	 *
	 * @param string $action Action name.
	 * @param int    $id     Attachment.
	 * @return string
	 */
	private static function action_url( $action, $id ) {
		return wp_nonce_url( admin_url( 'admin-post.php?action=' . $action . '&attachment_id=' . absint( $id ) ), $action . '_' . absint( $id ) );
	}

	/**
	 * Attachment details (media modal and edit screen): the review box.
	 *
	 * @param array   $fields Fields.
	 * @param WP_Post $post   Attachment.
	 * @return array
	 */
	public static function fields_to_edit( $fields, $post ) {
		if ( ! wp_attachment_is_image( $post->ID ) ) {
			return $fields;
		}
		$fields['alttext_status'] = array(
			'label' => __( 'Alt text review', 'alttext' ),
			'input' => 'html',
			'html'  => self::status_html( $post->ID ),
		);
		return $fields;
	}

	/**
	 * Media library list view: an "Alt text" column.
	 *
	 * @param array $columns Columns.
	 * @return array
	 */
	public static function columns( $columns ) {
		$columns['alttext'] = __( 'Alt text', 'alttext' );
		return $columns;
	}

	/**
	 * Prints the column.
	 *
	 * @param string $column Column.
	 * @param int    $id     Attachment.
	 */
	public static function column( $column, $id ) {
		if ( 'alttext' === $column && wp_attachment_is_image( $id ) ) {
			echo self::status_html( $id ); // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- status_html escapes every value.
		}
	}

	/**
	 * Checks nonce and capability for an attachment action; returns the attachment ID.
	 *
	 * @param string $action Action name.
	 * @return int
	 */
	private static function checked_attachment( $action ) {
		$id = isset( $_GET['attachment_id'] ) ? absint( $_GET['attachment_id'] ) : 0; // phpcs:ignore WordPress.Security.NonceVerification.Recommended -- verified just below.
		check_admin_referer( $action . '_' . $id );
		if ( ! $id || 'attachment' !== get_post_type( $id ) || ! current_user_can( 'edit_post', $id ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to edit this image.', 'alttext' ), 403 );
		}
		return $id;
	}

	/**
	 * Back to where the user came from (or the attachment's edit screen).
	 *
	 * @param int $id Attachment.
	 */
	private static function back( $id ) {
		$to = wp_get_referer();
		wp_safe_redirect( $to ? $to : get_edit_post_link( $id, 'raw' ) );
		exit;
	}

	/**
	 * Approve: the alt (or the proposal, when the alt is empty) becomes reviewed.
	 */
	public static function handle_approve() {
		$id = self::checked_attachment( 'alttext_approve' );
		Alttext_Attachments::approve( $id );
		self::back( $id );
	}

	/**
	 * Regenerate: ask the service again (human alt stays; a proposal may come back).
	 */
	public static function handle_regenerate() {
		$id = self::checked_attachment( 'alttext_regenerate' );
		Alttext_Attachments::describe( $id );
		self::back( $id );
	}

	/**
	 * Adds Media > Alt text backfill.
	 */
	public static function menu() {
		add_media_page( __( 'Alt text backfill', 'alttext' ), __( 'Alt text backfill', 'alttext' ), 'manage_options', self::BACKFILL_PAGE, array( __CLASS__, 'render_backfill' ) );
	}

	/**
	 * Runs one slice of the backfill from the admin screen (for sites without shell access).
	 */
	public static function handle_backfill() {
		check_admin_referer( 'alttext_backfill' );
		if ( ! current_user_can( 'manage_options' ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to run the backfill.', 'alttext' ), 403 );
		}
		$limit     = isset( $_POST['limit'] ) ? min( 200, max( 1, absint( $_POST['limit'] ) ) ) : 20;
		$overwrite = ! empty( $_POST['overwrite_human'] );
		$lines     = array();
		$counts    = Alttext_Backfill::run(
			array(
				'limit'           => $limit,
				'dry_run'         => ! empty( $_POST['dry_run'] ),
				'overwrite_human' => $overwrite,
				'report'          => function ( $id, $status, $text ) use ( &$lines ) {
					$lines[] = array( $id, $status, $text );
				},
			)
		);
		if ( ! empty( $_POST['background'] ) && ! is_wp_error( $counts ) && ! $counts['finished'] ) {
			wp_schedule_single_event( time(), Alttext_Backfill::CRON_HOOK, array( $overwrite ) );
		}
		set_transient(
			'alttext_backfill_' . get_current_user_id(),
			array(
				'counts' => is_wp_error( $counts ) ? $counts->get_error_message() : $counts,
				'lines'  => $lines,
			),
			HOUR_IN_SECONDS
		);
		wp_safe_redirect( admin_url( 'upload.php?page=' . self::BACKFILL_PAGE ) );
		exit;
	}

	/**
	 * Prints the backfill screen with the last run's results.
	 */
	public static function render_backfill() {
		if ( ! current_user_can( 'manage_options' ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to run the backfill.', 'alttext' ), 403 );
		}
		$last = get_transient( 'alttext_backfill_' . get_current_user_id() );
		echo '<div class="wrap"><h1>' . esc_html__( 'Alt text backfill', 'alttext' ) . '</h1>';
		echo '<p>' . esc_html__( 'Sends images with missing alt text, and images whose alt text was never checked, to the alttext service in batches. Empty alt is filled; human alt is kept and gets a proposal unless you choose to replace it. The run resumes where the last one stopped.', 'alttext' ) . '</p>';
		if ( is_array( $last ) ) {
			echo '<h2>' . esc_html__( 'Last run', 'alttext' ) . '</h2>';
			if ( is_string( $last['counts'] ) ) {
				echo '<div class="notice notice-error inline"><p>' . esc_html( $last['counts'] ) . '</p></div>';
			} else {
				/* translators: 1-4: numbers of images. */
				echo '<p>' . esc_html( sprintf( __( 'Filled %1$d, proposed %2$d, kept %3$d, failed %4$d.', 'alttext' ), $last['counts']['filled'], $last['counts']['proposed'], $last['counts']['kept'], $last['counts']['failed'] ) )
					. ' ' . ( $last['counts']['finished'] ? esc_html__( 'Every image has been checked.', 'alttext' ) : esc_html__( 'More images are waiting: run again to continue.', 'alttext' ) ) . '</p>';
			}
			if ( $last['lines'] ) {
				echo '<table class="widefat striped"><caption class="screen-reader-text">' . esc_html__( 'Images in the last run', 'alttext' ) . '</caption><thead><tr><th scope="col">' . esc_html__( 'Image', 'alttext' ) . '</th><th scope="col">' . esc_html__( 'Outcome', 'alttext' ) . '</th><th scope="col">' . esc_html__( 'Text', 'alttext' ) . '</th></tr></thead><tbody>';
				foreach ( $last['lines'] as $line ) {
					echo '<tr><td><a href="' . esc_url( get_edit_post_link( $line[0] ) ) . '">' . esc_html( get_the_title( $line[0] ) ) . '</a></td><td>' . esc_html( $line[1] ) . '</td><td>' . esc_html( $line[2] ) . '</td></tr>';
				}
				echo '</tbody></table>';
			}
		}
		echo '<form method="post" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '">';
		wp_nonce_field( 'alttext_backfill' );
		echo '<input type="hidden" name="action" value="alttext_backfill" />';
		echo '<table class="form-table" role="presentation"><tr><th scope="row"><label for="alttext-limit">' . esc_html__( 'Images in this run', 'alttext' ) . '</label></th><td><input type="number" id="alttext-limit" name="limit" value="20" min="1" max="200" class="small-text" /></td></tr>';
		echo '<tr><th scope="row">' . esc_html__( 'Options', 'alttext' ) . '</th><td><fieldset><legend class="screen-reader-text">' . esc_html__( 'Options', 'alttext' ) . '</legend>';
		echo '<label><input type="checkbox" name="dry_run" value="1" /> ' . esc_html__( 'Dry run: show what would change, save nothing', 'alttext' ) . '</label><br />';
		echo '<label><input type="checkbox" name="overwrite_human" value="1" /> ' . esc_html__( 'Replace human alt text that fails the quality rules', 'alttext' ) . '</label><br />';
		echo '<label><input type="checkbox" name="background" value="1" /> ' . esc_html__( 'Continue with the rest in the background (WP-Cron)', 'alttext' ) . '</label></fieldset></td></tr></table>';
		submit_button( __( 'Run backfill', 'alttext' ) );
		echo '</form></div>';
	}

	/**
	 * Small styles for the badges (admin screens only).
	 */
	public static function styles() {
		echo '<style>.alttext-badge{display:inline-block;padding:0 6px;border:1px solid #50575e;border-radius:3px;font-size:12px;line-height:20px;color:#1d2327;background:#f6f7f7}.alttext-review{border-color:#996800;background:#fcf9e8;color:#1d2327}.alttext-ai{border-color:#2271b1;background:#f0f6fc}.alttext-ok{border-color:#00a32a;background:#edfaef}.alttext-error{color:#b32d2e}.alttext-status p{margin:2px 0}</style>';
	}
}
